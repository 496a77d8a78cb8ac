"""Block devices: raw images and VMDK (see vmm.disk.base for the interface)."""
