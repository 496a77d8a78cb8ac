"""vmm's VMDK files against Debian's qemu-img: each reads what the other writes.

- every subformat qemu-img makes, filled by ``qemu-img convert`` or written in place by
  ``qemu-io``, reads in vmm byte for byte as ``qemu-img convert -O raw`` gives it;
- every file vmm writes (each type, a child after writes, a committed parent) passes
  ``qemu-img check`` and ``qemu-img compare``, and ``qemu-img info`` reports its create
  type and CIDs as vmm wrote them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool
from vmm.disk.open import open_disk
from vmm.disk.raw import RawDisk
from vmm.disk.vmdk.commit import commit
from vmm.disk.vmdk.convert import convert
from vmm.disk.vmdk.create import VMDK_TYPES, create_child, create_vmdk
from vmm.disk.vmdk.disk import VmdkDisk

pytestmark = pytest.mark.qemu

MiB = 1 << 20
SIZE = 64 * MiB
SPLIT_TEST_SECTORS = 32768  # 16 MiB extents, so a 64 MiB disk splits into four
QEMU_TYPES = ["monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat", "streamOptimized"]
# Data runs (offset, length), including odd sector offsets and the split boundaries.
PATTERN = [(0, 100 * 1024), (MiB + 512, 3 * 512), (16 * MiB - 4096, 8192), (20 * MiB, MiB), (SIZE - 4096, 4096)]


@pytest.fixture(scope="module")
def qemu_img() -> str:
    return require_tool("qemu-img")


def run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed: {result.stderr or result.stdout}"
    return result.stdout


def make_pattern(path: Path, size: int = SIZE, runs=PATTERN, seed: int = 1) -> Path:
    rng = random.Random(seed)
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, length in runs:
            f.seek(offset)
            f.write(rng.randbytes(length))
    return path


def same_raw(a: Path, b: Path) -> bool:
    """Byte equality of two raw files, reading only where either holds data (they are host-sparse)."""
    if a.stat().st_size != b.stat().st_size:
        return False
    with RawDisk(a, read_only=True) as da, RawDisk(b, read_only=True) as db:
        ranges = sorted(set(da.data_ranges()) | set(db.data_ranges()))
        for lba, count in ranges:
            for start in range(lba, lba + count, 8192):
                n = min(8192, lba + count - start)
                if da.read(start, n) != db.read(start, n):
                    return False
    return True


def vmm_reads_as_qemu(image: Path, tmp: Path) -> None:
    """vmm's view of ``image`` equals qemu-img's (both flattened to raw)."""
    qemu_raw, vmm_raw = tmp / "qemu.raw", tmp / "vmm.raw"
    for p in (qemu_raw, vmm_raw):
        if p.exists():
            p.unlink()
    run("qemu-img", "convert", "-O", "raw", str(image), str(qemu_raw))
    convert(image, vmm_raw, "raw")
    assert same_raw(qemu_raw, vmm_raw)
    with open_disk(image, read_only=True) as disk:  # and direct reads at the odd places
        with open(qemu_raw, "rb") as f:
            for offset, length in PATTERN:
                lba = offset // 512
                count = -(-(offset % 512 + length) // 512)
                if (lba + count) * 512 <= disk.capacity * 512:
                    f.seek(lba * 512)
                    assert disk.read(lba, count) == f.read(count * 512)


def qemu_info(image: Path) -> dict:
    return json.loads(run("qemu-img", "info", "--output=json", str(image)))


def qemu_check(image: Path) -> None:
    out = run("qemu-img", "check", str(image))
    assert "No errors were found" in out, out


@pytest.mark.parametrize("subformat", QEMU_TYPES)
def test_vmm_reads_what_qemu_img_convert_writes(qemu_img, tmp_path, subformat):
    src = make_pattern(tmp_path / "src.raw")
    image = tmp_path / "q.vmdk"
    run("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", f"subformat={subformat}", str(src), str(image))
    vmm_reads_as_qemu(image, tmp_path)
    with open_disk(image, read_only=True) as disk:
        assert disk.create_type == subformat
        assert disk.capacity * 512 == SIZE


@pytest.mark.parametrize("subformat", [t for t in QEMU_TYPES if t != "streamOptimized"])
def test_vmm_reads_what_qemu_io_writes_in_place(qemu_img, tmp_path, subformat):
    qemu_io = require_tool("qemu-io")
    image = tmp_path / "q.vmdk"
    # Larger than 2 GiB so that qemu's own split types have several extents.
    run("qemu-img", "create", "-q", "-f", "vmdk", "-o", f"subformat={subformat}", str(image), "5G")
    for offset, length, byte in (
        (0, 65536, 0x11),
        (2 * 1024 * MiB - 4096, 8192, 0x22),
        (4 * 1024 * MiB + 512, 1024, 0x33),
        (5 * 1024 * MiB - 512, 512, 0x44),
    ):
        run(qemu_io, "-f", "vmdk", "-c", f"write -P {byte} {offset} {length}", str(image))
    with open_disk(image, read_only=True) as disk:
        assert disk.read(0, 128) == b"\x11" * 65536
        assert disk.read((2 * 1024 * MiB - 4096) // 512, 16) == b"\x22" * 8192
        assert disk.read((4 * 1024 * MiB) // 512, 4) == bytes(512) + b"\x33" * 1024 + bytes(512)
        assert disk.read(disk.capacity - 1, 1) == b"\x44" * 512
        assert disk.read(1024, 8) == bytes(4096)


@pytest.mark.parametrize("kind", VMDK_TYPES)
def test_qemu_img_accepts_every_type_vmm_writes(qemu_img, tmp_path, kind):
    src = make_pattern(tmp_path / "src.raw")
    image = tmp_path / "v.vmdk"
    convert(src, image, kind, extent_sectors=SPLIT_TEST_SECTORS)
    qemu_check(image)
    run("qemu-img", "compare", "-f", "raw", "-F", "vmdk", str(src), str(image))
    info = qemu_info(image)["format-specific"]["data"]
    with VmdkDisk(image, read_only=True) as disk:
        assert info["create-type"] == kind
        assert info["cid"] == disk.cid
        assert info["parent-cid"] == 0xFFFFFFFF
        assert len(info["extents"]) == len(disk.extents)


@pytest.mark.parametrize("kind", [t for t in VMDK_TYPES if t != "streamOptimized"])
def test_qemu_io_can_write_into_disks_vmm_creates(qemu_img, tmp_path, kind):
    """vmm preallocates every grain table, so qemu's writes land (and vmm reads them)."""
    qemu_io = require_tool("qemu-io")
    image = tmp_path / "v.vmdk"
    create_vmdk(image, SIZE // 512, kind, extent_sectors=SPLIT_TEST_SECTORS)
    run(qemu_io, "-f", "vmdk", "-c", "write -P 0x5a 16773120 8192", str(image))  # across 16 MiB
    qemu_check(image)
    with open_disk(image, read_only=True) as disk:
        assert disk.read(16773120 // 512 - 1, 18) == bytes(512) + b"\x5a" * 8192 + bytes(512)
    vmm_reads_as_qemu(image, tmp_path)


def test_child_written_by_vmm_passes_qemu_img(qemu_img, tmp_path):
    src = make_pattern(tmp_path / "src.raw")
    base, child = tmp_path / "base.vmdk", tmp_path / "base-000001.vmdk"
    convert(src, base, "monolithicSparse")
    create_child(base, child)
    expected = tmp_path / "expected.raw"
    shutil.copy(src, expected)
    writes = [(3, b"\xc3" * 512 * 5), (20 * MiB // 512 + 100, b"\x7e" * 512 * 300), (SIZE // 512 - 1, b"\xee" * 512)]
    with open_disk(child) as disk, open(expected, "r+b") as f:
        for lba, data in writes:
            disk.write(lba, data)
            f.seek(lba * 512)
            f.write(data)
    qemu_check(child)
    run("qemu-img", "compare", "-f", "raw", "-F", "vmdk", str(expected), str(child))
    run("qemu-img", "compare", "-f", "raw", "-F", "vmdk", str(src), str(base))
    info = qemu_info(child)
    with VmdkDisk(base, read_only=True) as b, VmdkDisk(child, read_only=True) as c:
        assert info["format-specific"]["data"]["parent-cid"] == b.cid
        assert info["format-specific"]["data"]["cid"] == c.cid
    assert os.path.basename(info["backing-filename"]) == "base.vmdk"

    assert commit(child) == str(base)
    qemu_check(base)
    qemu_check(child)
    run("qemu-img", "compare", "-f", "raw", "-F", "vmdk", str(expected), str(base))
    run("qemu-img", "compare", "-f", "raw", "-F", "vmdk", str(expected), str(child))


def test_vmm_reads_a_child_qemu_img_creates_and_writes(qemu_img, tmp_path):
    qemu_io = require_tool("qemu-io")
    src = make_pattern(tmp_path / "src.raw")
    base, child = tmp_path / "base.vmdk", tmp_path / "child.vmdk"
    convert(src, base, "monolithicSparse")
    run("qemu-img", "create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", str(child))
    run(qemu_io, "-f", "vmdk", "-c", "write -P 0x99 1049088 2048", str(child))  # inside a parent grain
    with VmdkDisk(child, read_only=True) as disk:
        assert disk.parent is not None
    vmm_reads_as_qemu(child, tmp_path)


def test_vmm_reads_and_writes_zeroed_grain_entries(qemu_img, tmp_path):
    """Version-2 sparse files: a GT entry of 1 reads as zeros, and a write there allocates a grain."""
    qemu_io = require_tool("qemu-io")
    image = tmp_path / "z.vmdk"
    run("qemu-img", "create", "-q", "-f", "vmdk", "-o", "zeroed_grain=on", str(image), "4M")
    run(qemu_io, "-f", "vmdk", "-c", "write -P 7 0 128k", "-c", "write -z 0 64k", str(image))
    with VmdkDisk(image) as disk:
        assert disk.sparse_extents()[0].tables.entry(0) == 1
        assert disk.read(0, 256) == bytes(65536) + b"\x07" * 65536
        disk.write(8, b"\x08" * 512)
        assert disk.read(0, 16) == bytes(8 * 512) + b"\x08" * 512 + bytes(7 * 512)
    qemu_check(image)
    vmm_reads_as_qemu(image, tmp_path)
