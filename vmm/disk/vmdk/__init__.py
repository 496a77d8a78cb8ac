"""VMDK: descriptor, hosted sparse / flat / split / streamOptimized extents, delta disks."""
