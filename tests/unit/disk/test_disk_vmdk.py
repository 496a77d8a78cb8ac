"""Behaviour of VMDK disks vmm creates and reads: every type, CIDs, delta disks, commit, convert."""

from __future__ import annotations

import os

import pytest

from vmm.disk.open import open_disk
from vmm.disk.raw import RawDisk, create_raw
from vmm.disk.vmdk.check import check_disk
from vmm.disk.vmdk.commit import commit
from vmm.disk.vmdk.convert import convert
from vmm.disk.vmdk.create import VMDK_TYPES, create_child, create_vmdk
from vmm.disk.vmdk.descriptor import parse_descriptor
from vmm.disk.vmdk.disk import VmdkDisk
from vmm.errors import DiskError

WRITABLE = [t for t in VMDK_TYPES if t != "streamOptimized"]
SECTOR = 512


def pattern(seed: int, sectors: int) -> bytes:
    return bytes((seed * 31 + i * 7) & 0xFF for i in range(sectors * SECTOR))


@pytest.mark.parametrize("kind", WRITABLE)
def test_written_data_reads_back_after_reopen(tmp_path, kind):
    path = tmp_path / "d.vmdk"
    create_vmdk(path, 1000, kind, grain_size=16, extent_sectors=320)
    with open_disk(path) as disk:
        assert disk.capacity == 1000
        disk.write(310, pattern(1, 40))  # crosses an extent boundary of the split types
        disk.write(999, pattern(2, 1))
    with open_disk(path, read_only=True) as disk:
        assert disk.read(310, 40) == pattern(1, 40)
        assert disk.read(999, 1) == pattern(2, 1)
        assert disk.read(0, 310) == bytes(310 * SECTOR)
    assert check_disk(path).ok


def test_split_types_name_their_extents_like_vmware(tmp_path):
    create_vmdk(tmp_path / "x.vmdk", 1000, "twoGbMaxExtentSparse", grain_size=16, extent_sectors=320)
    create_vmdk(tmp_path / "y.vmdk", 1000, "twoGbMaxExtentFlat", extent_sectors=320)
    create_vmdk(tmp_path / "z.vmdk", 1000, "monolithicFlat")
    names = sorted(os.listdir(tmp_path))
    assert names == [
        "x-s001.vmdk",
        "x-s002.vmdk",
        "x-s003.vmdk",
        "x-s004.vmdk",
        "x.vmdk",
        "y-f001.vmdk",
        "y-f002.vmdk",
        "y-f003.vmdk",
        "y-f004.vmdk",
        "y.vmdk",
        "z-flat.vmdk",
        "z.vmdk",
    ]
    assert os.path.getsize(tmp_path / "y-f004.vmdk") == 40 * SECTOR


def test_first_write_after_open_changes_cid_once(tmp_path):
    path = tmp_path / "d.vmdk"
    create_vmdk(path, 256, grain_size=16)
    with VmdkDisk(path) as disk:
        before = disk.cid
        disk.read(0, 1)
        assert disk.cid == before
        disk.write(0, pattern(1, 1))
        after = disk.cid
        disk.write(1, pattern(2, 1))
        assert disk.cid == after != before
    with VmdkDisk(path, read_only=True) as disk:
        assert disk.cid == after


def test_separate_descriptor_is_replaced_atomically_on_cid_change(tmp_path):
    path = tmp_path / "d.vmdk"
    create_vmdk(path, 256, "monolithicFlat")
    inode = os.stat(path).st_ino
    with VmdkDisk(path) as disk:
        disk.write(0, pattern(1, 1))
        cid = disk.cid
    assert os.stat(path).st_ino != inode  # a new file renamed over the old one
    assert parse_descriptor(path.read_text(), str(path)).cid == cid
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []


def test_delta_reads_fall_through_and_writes_stay_in_the_child(tmp_path):
    base, child = tmp_path / "base.vmdk", tmp_path / "base-000001.vmdk"
    create_vmdk(base, 512, grain_size=16)
    with open_disk(base) as disk:
        disk.write(0, pattern(1, 512))
    base_bytes = base.read_bytes()
    create_child(base, child, grain_size=16)
    with open_disk(child) as disk:
        assert disk.read(0, 512) == pattern(1, 512)
        disk.write(20, pattern(9, 3))  # partial grain: the rest of the grain comes from the parent
    assert base.read_bytes() == base_bytes
    expected = bytearray(pattern(1, 512))
    expected[20 * SECTOR : 23 * SECTOR] = pattern(9, 3)
    with open_disk(child, read_only=True) as disk:
        assert disk.read(0, 512) == expected
        assert disk.chain() == [str(child), str(tmp_path / "base.vmdk")]
        assert list(disk.own_ranges()) == [(16, 16)]


def test_child_refuses_a_parent_whose_cid_changed(tmp_path):
    base, child = tmp_path / "base.vmdk", tmp_path / "child.vmdk"
    create_vmdk(base, 64, grain_size=16)
    create_child(base, child)
    with open_disk(base) as disk:
        disk.write(0, pattern(1, 1))
    with pytest.raises(DiskError, match=r"child.vmdk: descriptor: parentCID .* does not match CID"):
        open_disk(child)


def test_commit_folds_the_child_into_the_parent_and_keeps_the_child_valid(tmp_path):
    base, child = tmp_path / "base.vmdk", tmp_path / "child.vmdk"
    create_vmdk(base, 256, "twoGbMaxExtentSparse", grain_size=16, extent_sectors=128)
    with open_disk(base) as disk:
        disk.write(0, pattern(1, 256))
    create_child(base, child, grain_size=16)
    with open_disk(child) as disk:
        disk.write(100, pattern(2, 50))
        expected = disk.read(0, 256)
    assert commit(child) == str(base)
    with open_disk(base, read_only=True) as disk:
        assert disk.read(0, 256) == expected
    with open_disk(child, read_only=True) as disk:
        assert disk.read(0, 256) == expected
    assert check_disk(child).ok


def test_commit_of_a_base_disk_is_an_error(tmp_path):
    create_vmdk(tmp_path / "base.vmdk", 64)
    with pytest.raises(DiskError, match="not a delta disk"):
        commit(tmp_path / "base.vmdk")


@pytest.mark.parametrize("kind", [*VMDK_TYPES, "raw"])
def test_convert_round_trips_through_every_type(tmp_path, kind):
    src = tmp_path / "src.raw"
    create_raw(src, 700)
    with RawDisk(src) as disk:
        disk.write(3, pattern(5, 200))
        disk.write(650, pattern(6, 50))
    dst = tmp_path / f"dst.{kind}"
    convert(src, dst, kind, grain_size=16, extent_sectors=256)
    back = tmp_path / "back.raw"
    convert(dst, back)
    assert back.read_bytes() == src.read_bytes()
    assert check_disk(dst).ok


def test_convert_refuses_to_overwrite(tmp_path):
    create_raw(tmp_path / "a.raw", 8)
    create_raw(tmp_path / "b.raw", 8)
    with pytest.raises(DiskError, match="b.raw: already exists"):
        convert(tmp_path / "a.raw", tmp_path / "b.raw")


def test_stream_optimized_is_read_only(tmp_path):
    path = tmp_path / "s.vmdk"
    create_vmdk(path, 128, "streamOptimized")
    with open_disk(path) as disk:
        assert disk.read(0, 128) == bytes(128 * SECTOR)
        with pytest.raises(DiskError, match="streamOptimized"):
            disk.write(0, bytes(SECTOR))


def test_reads_and_writes_outside_the_disk_are_errors(tmp_path):
    create_vmdk(tmp_path / "d.vmdk", 64)
    with open_disk(tmp_path / "d.vmdk") as disk:
        with pytest.raises(DiskError, match="outside the disk"):
            disk.read(60, 5)
        with pytest.raises(DiskError, match="outside the disk"):
            disk.write(64, bytes(SECTOR))
        with pytest.raises(DiskError, match="multiple of the 512-byte sector"):
            disk.write(0, b"abc")
    with open_disk(tmp_path / "d.vmdk", read_only=True) as disk, pytest.raises(DiskError, match="read-only"):
        disk.write(0, bytes(SECTOR))


def test_grain_written_without_its_gt_entry_is_leaked_not_damage(tmp_path):
    """A process killed after the grain data and before the GT entry: old data, check passes."""
    path = tmp_path / "d.vmdk"
    create_vmdk(path, 256, grain_size=16)
    with open_disk(path) as disk:
        disk.write(0, pattern(1, 16))
    with open(path, "ab") as f:  # the orphan grain a killed write leaves at the end
        f.write(pattern(2, 16))
    report = check_disk(path)
    assert report.ok and report.leaked_bytes == 16 * SECTOR
    with open_disk(path) as disk:
        assert disk.read(16, 16) == bytes(16 * SECTOR)
        disk.write(16, pattern(3, 16))  # allocation goes past the leaked grain
        assert disk.read(0, 32) == pattern(1, 16) + pattern(3, 16)
    assert check_disk(path).ok


def test_check_reports_gt_rgt_disagreement_and_overlapping_grains(tmp_path):
    path = tmp_path / "d.vmdk"
    create_vmdk(path, 256, grain_size=16)
    with open_disk(path) as disk:
        disk.write(0, pattern(1, 32))
        header = disk.sparse_extents()[0].header
        gt = disk.sparse_extents()[0].tables.gd[0]
    with open(path, "r+b") as f:
        f.seek(gt * SECTOR)
        first = f.read(4)
        f.seek(gt * SECTOR + 4)
        f.write(first)  # grain 1 now points at grain 0's data in the GT but not the RGT
    errors = check_disk(path).errors
    assert any("redundant table" in e for e in errors)
    assert any("overlaps" in e for e in errors)
    assert header.overhead > 0


def test_raw_data_ranges_follow_holes(tmp_path):
    path = tmp_path / "r.raw"
    create_raw(path, 4096)
    with RawDisk(path) as disk:
        disk.write(2048, pattern(1, 8))
        ranges = list(disk.data_ranges())
    assert all(lba <= 2048 and lba + n >= 2056 for lba, n in ranges) and len(ranges) == 1


def test_descriptor_render_keeps_qemu_quirks(tmp_path):
    create_vmdk(tmp_path / "d.vmdk", 64, "monolithicFlat")
    text = (tmp_path / "d.vmdk").read_text()
    assert text.index("CID=") < text.index("parentCID=")
    assert 'createType="monolithicFlat"' in text
    lines = text.splitlines()
    extent = next(i for i, line in enumerate(lines) if line.startswith("RW "))
    assert lines[extent - 1].strip() != ""


def test_create_never_replaces_a_file_and_leaves_no_temp_files(tmp_path):
    (tmp_path / "d-s002.vmdk").write_bytes(b"precious")
    with pytest.raises(DiskError, match="d-s002.vmdk: already exists"):
        create_vmdk(tmp_path / "d.vmdk", 1000, "twoGbMaxExtentSparse", grain_size=16, extent_sectors=320)
    assert sorted(os.listdir(tmp_path)) == ["d-s002.vmdk"]
    assert (tmp_path / "d-s002.vmdk").read_bytes() == b"precious"


def test_interrupted_stream_convert_leaves_nothing(tmp_path, monkeypatch):
    src = tmp_path / "src.raw"
    create_raw(src, 256)
    with RawDisk(src) as disk:
        disk.write(0, pattern(1, 256))

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("zlib.compress", boom)
    with pytest.raises(KeyboardInterrupt):
        convert(src, tmp_path / "s.vmdk", "streamOptimized")
    assert sorted(os.listdir(tmp_path)) == ["src.raw"]


def test_three_level_chain_reads_through_and_commits_one_level(tmp_path):
    base, mid, top = (tmp_path / n for n in ("base.vmdk", "base-000001.vmdk", "base-000002.vmdk"))
    create_vmdk(base, 128, grain_size=16)
    with open_disk(base) as disk:
        disk.write(0, pattern(1, 128))
    create_child(base, mid, grain_size=16)
    with open_disk(mid) as disk:
        disk.write(16, pattern(2, 16))
    create_child(mid, top, grain_size=16)
    with open_disk(top) as disk:
        disk.write(40, pattern(3, 2))
        expected = disk.read(0, 128)
        assert disk.chain() == [str(top), str(mid), str(base)]
    base_bytes = base.read_bytes()
    commit(top)
    assert base.read_bytes() == base_bytes  # only the direct parent takes the data
    for path in (mid, top):
        with open_disk(path, read_only=True) as disk:
            assert disk.read(0, 128) == expected
        assert check_disk(path).ok
