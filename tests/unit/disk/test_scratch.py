"""ScratchDisk: the guest's writes stay in memory, the image file never changes."""

from __future__ import annotations

import pytest

from vmm.disk.raw import RawDisk
from vmm.disk.scratch import ScratchDisk
from vmm.errors import DiskError


def test_writes_are_read_back_and_the_file_keeps_its_bytes(tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(range(256)) * 8)  # 4 sectors
    disk = ScratchDisk(RawDisk(image, read_only=True))
    disk.write(1, b"\xaa" * 512 + b"\xbb" * 512)
    assert disk.read(0, 4) == bytes(range(256)) * 2 + b"\xaa" * 512 + b"\xbb" * 512 + bytes(range(256)) * 2
    disk.close()
    assert image.read_bytes() == bytes(range(256)) * 8


def test_out_of_range_and_partial_sectors_are_disk_errors(tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(1024))
    disk = ScratchDisk(RawDisk(image, read_only=True))
    with pytest.raises(DiskError):
        disk.write(2, bytes(512))
    with pytest.raises(DiskError):
        disk.write(0, bytes(100))
    with pytest.raises(DiskError):
        disk.read(1, 2)
