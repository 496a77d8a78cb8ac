"""Block devices: raw images and VMDK (see vmm.disk.base for the interface).

``open_disk(path)`` opens either by content. VMDK: ``create_vmdk`` / ``create_disk`` make
new disks of every hosted type, ``create_child`` a delta disk (snapshots), ``commit`` folds
a delta into its parent, ``convert`` copies between any types, ``check_disk`` reports damage.

Each name is imported from its module on first use (PEP 562), so opening a raw image, or
importing vmm.disk.base, does not load the VMDK code.
"""

from __future__ import annotations

from vmm.lazy import exports

_HOMES = {
    "SECTOR_SIZE": "vmm.disk.base",
    "BlockDevice": "vmm.disk.base",
    "is_vmdk": "vmm.disk.open",
    "open_disk": "vmm.disk.open",
    "RawDisk": "vmm.disk.raw",
    "create_raw": "vmm.disk.raw",
    "CheckReport": "vmm.disk.vmdk.check",
    "check_disk": "vmm.disk.vmdk.check",
    "commit": "vmm.disk.vmdk.commit",
    "convert": "vmm.disk.vmdk.convert",
    "DISK_TYPES": "vmm.disk.vmdk.create",
    "VMDK_TYPES": "vmm.disk.vmdk.create",
    "create_child": "vmm.disk.vmdk.create",
    "create_disk": "vmm.disk.vmdk.create",
    "create_vmdk": "vmm.disk.vmdk.create",
    "VmdkDisk": "vmm.disk.vmdk.disk",
}
__all__ = sorted(_HOMES)

__getattr__ = exports(__name__, globals(), _HOMES)
