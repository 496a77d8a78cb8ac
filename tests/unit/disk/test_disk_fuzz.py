"""Corrupted headers, descriptors, grain directories and grain tables: vmm raises DiskError and
nothing else, and never reads outside the file, whether opening, reading, writing or checking."""

from __future__ import annotations

import os
import shutil
import tempfile
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmm.disk.open import open_disk
from vmm.disk.vmdk.check import check_disk
from vmm.disk.vmdk.convert import convert
from vmm.disk.vmdk.create import create_vmdk
from vmm.disk.vmdk.disk import VmdkDisk
from vmm.errors import DiskError

SECTOR = 512
_real_pread = os.pread
_TEMPLATES: dict[str, tuple[str, int]] = {}


def checked_pread(fd: int, length: int, offset: int) -> bytes:
    size = os.fstat(fd).st_size
    assert offset >= 0 and (length == 0 or offset < size) and offset + length <= max(size, offset), (
        f"read of {length} bytes at {offset} outside a file of {size} bytes"
    )
    return _real_pread(fd, length, offset)


def template(kind: str) -> tuple[str, int]:
    """A small disk with data, made once per kind; returns (path, metadata bytes worth corrupting)."""
    if kind not in _TEMPLATES:
        tmp = tempfile.mkdtemp(prefix="vmm-fuzz-")
        path = os.path.join(tmp, "t.vmdk")
        if kind == "stream":
            src = os.path.join(tmp, "src.vmdk")
            create_vmdk(src, 256, grain_size=16)
            with open_disk(src) as disk:
                disk.write(10, bytes(range(256)) * 2 * 40)
            convert(src, path, "streamOptimized", grain_size=16)
        else:
            create_vmdk(path, 256, grain_size=16, gtes_per_gt=4)
            with open_disk(path) as disk:
                disk.write(10, bytes(range(256)) * 2 * 40)
        with VmdkDisk(path, read_only=True) as disk:
            header = disk.sparse_extents()[0].header
        _TEMPLATES[kind] = (path, os.path.getsize(path) if kind == "stream" else header.overhead * SECTOR)
    return _TEMPLATES[kind]


def exercise(path: str) -> None:
    try:
        with open_disk(path) as disk:
            span = min(disk.capacity, 512)
            disk.read(0, span)
            if disk.capacity:
                disk.read(disk.capacity - 1, 1)
                disk.write(min(20, disk.capacity - 1), bytes(SECTOR))
    except DiskError:
        pass
    check_disk(path)  # reports, never raises


corruption = st.lists(st.tuples(st.integers(0, 1 << 20), st.binary(min_size=1, max_size=8)), min_size=1, max_size=6)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["sparse", "stream"]), corruption, st.booleans())
def test_corrupted_files_raise_only_disk_error(kind, changes, truncate):
    source, span = template(kind)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.vmdk")
        shutil.copy(source, path)
        with open(path, "r+b") as f:
            for offset, data in changes:
                f.seek(offset % span)
                f.write(data)
            if truncate:
                f.truncate(changes[0][0] % os.path.getsize(path))
        with mock.patch("os.pread", checked_pread):
            exercise(path)


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(
        [
            "grainSize",
            "numGTEsPerGT",
            "capacity",
            "gdOffset",
            "rgdOffset",
            "descriptorOffset",
            "descriptorSize",
            "overHead",
            "version",
            "flags",
        ]
    ),
    st.integers(0, (1 << 64) - 1),
)
def test_every_header_field_value_is_checked(field, value):
    offsets = {
        "version": (4, 4),
        "flags": (8, 4),
        "capacity": (12, 8),
        "grainSize": (20, 8),
        "descriptorOffset": (28, 8),
        "descriptorSize": (36, 8),
        "numGTEsPerGT": (44, 4),
        "rgdOffset": (48, 8),
        "gdOffset": (56, 8),
        "overHead": (64, 8),
    }
    offset, size = offsets[field]
    source, _ = template("sparse")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.vmdk")
        shutil.copy(source, path)
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write((value % (1 << (8 * size))).to_bytes(size, "little"))
        with mock.patch("os.pread", checked_pread):
            exercise(path)
