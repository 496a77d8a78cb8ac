"""Block devices: raw images and VMDK (see vmm.disk.base for the interface).

``open_disk(path)`` opens either by content. VMDK: ``create_vmdk`` / ``create_disk`` make
new disks of every hosted type, ``create_child`` a delta disk (snapshots), ``commit`` folds
a delta into its parent, ``convert`` copies between any types, ``check_disk`` reports damage.
"""

from vmm.disk.base import SECTOR_SIZE, BlockDevice
from vmm.disk.open import is_vmdk, open_disk
from vmm.disk.raw import RawDisk, create_raw
from vmm.disk.vmdk.check import CheckReport, check_disk
from vmm.disk.vmdk.commit import commit
from vmm.disk.vmdk.convert import convert
from vmm.disk.vmdk.create import DISK_TYPES, VMDK_TYPES, create_child, create_disk, create_vmdk
from vmm.disk.vmdk.disk import VmdkDisk

__all__ = [
    "DISK_TYPES",
    "SECTOR_SIZE",
    "VMDK_TYPES",
    "BlockDevice",
    "CheckReport",
    "RawDisk",
    "VmdkDisk",
    "check_disk",
    "commit",
    "convert",
    "create_child",
    "create_disk",
    "create_raw",
    "create_vmdk",
    "is_vmdk",
    "open_disk",
]
