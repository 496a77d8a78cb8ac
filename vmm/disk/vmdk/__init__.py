"""VMDK: descriptor, hosted sparse / flat / split / streamOptimized extents, delta disks.

The two ways a VMDK file begins are here, so that telling a VMDK from a raw image
(vmm.disk.open) loads none of the format's code.
"""

MAGIC_BYTES = b"KDMV"  # a hosted sparse extent's first bytes
DESCRIPTOR_MAGIC = "# Disk DescriptorFile"  # a text descriptor's first line
