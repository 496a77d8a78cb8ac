"""A bundle or a disk chain reaches only files under its own folder (issue 23).

Each hostile file gets one line naming the file and why, a non-zero exit, and the file
outside is left untouched; what the user names on the command line (--allow-path,
--follow-symlinks) is allowed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vmm.cli import main
from vmm.disk.open import open_disk
from vmm.disk.vmdk.create import create_vmdk
from vmm.disk.vmdk.disk import VmdkDisk
from vmm.errors import DiskError

OUTSIDE = b"precious outside data\n" * 100


def descriptor(extents: str, parent: str | None = None) -> str:
    parent_lines = f'parentCID=12345678\nparentFileNameHint="{parent}"\n' if parent else "parentCID=ffffffff\n"
    return (
        "# Disk DescriptorFile\nversion=1\nCID=12345678\n"
        + parent_lines
        + 'createType="monolithicFlat"\n\n# Extent description\n'
        + extents
        + '\n\n# The Disk Data Base\n#DDB\nddb.adapterType = "ide"\n'
    )


def vmm(*argv: str, capsys) -> tuple[int, list[str]]:
    status = main(list(argv))
    err = capsys.readouterr().err
    return status, [line for line in err.splitlines() if line]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside.bin"
    path.write_bytes(OUTSIDE + bytes(1 << 20))
    return path


@pytest.fixture
def vm(tmp_path: Path) -> Path:
    folder = tmp_path / "vm"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("name", ["absolute", "../outside.bin", "sub/../../outside.bin"])
def test_extent_outside_the_folder_is_refused_in_one_line(vm, outside, name, capsys):
    target = str(outside) if name == "absolute" else name
    (vm / "sub").mkdir()
    disk = vm / "evil.vmdk"
    disk.write_text(descriptor(f'RW 2048 FLAT "{target}" 0'))
    status, lines = vmm("disk", "info", str(disk), capsys=capsys)
    assert status == 1
    assert len(lines) == 1
    assert lines[0].startswith(f"vmm: {disk}: extent '{target}': ")
    assert "outside the disk's folder" in lines[0] and "--allow-path" in lines[0]
    with pytest.raises(DiskError):
        open_disk(disk)  # not even read-write for a moment
    assert outside.read_bytes().startswith(OUTSIDE)


def test_a_guest_cannot_write_through_an_extent_outside(vm, outside, capsys):
    disk = vm / "evil.vmdk"
    disk.write_text(descriptor(f'RW 2048 FLAT "{outside}" 0'))
    before = outside.read_bytes()
    status, lines = vmm("run", str(disk), "--max-insns", "1000", capsys=capsys)
    assert status == 1 and len(lines) == 1 and "outside the disk's folder" in lines[0]
    assert outside.read_bytes() == before


def test_allow_path_names_the_file_on_the_command_line(vm, outside, capsys):
    disk = vm / "shared.vmdk"
    disk.write_text(descriptor(f'RW 2048 FLAT "{outside}" 0'))
    status, lines = vmm(
        "run", str(disk), "--max-insns", "1000", "--serial", "none", "--allow-path", str(outside), capsys=capsys
    )
    assert status == 124, lines  # ran to the instruction limit


@pytest.mark.parametrize("hint", ["/etc/passwd", "../outside.vmdk"])
def test_parent_hint_outside_the_folder_is_refused(vm, tmp_path, hint, capsys):
    create_vmdk(tmp_path / "outside.vmdk", 2048, "monolithicSparse")
    disk = vm / "child.vmdk"
    create_vmdk(vm / "child-s.vmdk", 2048, "monolithicSparse")
    disk.write_text(descriptor('RW 2048 SPARSE "child-s.vmdk"', parent=hint))
    status, lines = vmm("disk", "info", str(disk), capsys=capsys)
    assert status == 1 and len(lines) == 1
    assert lines[0].startswith(f"vmm: {disk}: descriptor: parentFileNameHint '{hint}': ")
    assert "outside the disk's folder" in lines[0]


def test_symlinked_extent_is_refused_unless_asked(vm, capsys):
    (vm / "real.bin").write_bytes(bytes(1 << 20))
    os.symlink("real.bin", vm / "link.bin")
    disk = vm / "d.vmdk"
    disk.write_text(descriptor('RW 2048 FLAT "link.bin" 0'))
    status, lines = vmm("disk", "info", str(disk), capsys=capsys)
    assert status == 1 and len(lines) == 1
    assert "is a symbolic link" in lines[0] and "--follow-symlinks" in lines[0]
    status, lines = vmm("run", str(disk), "--max-insns", "1000", "--serial", "none", "--follow-symlinks", capsys=capsys)
    assert status == 124, lines


def test_symlink_to_outside_is_refused_even_with_follow_symlinks(vm, outside, capsys):
    os.symlink(outside, vm / "link.bin")
    disk = vm / "d.vmdk"
    disk.write_text(descriptor('RW 2048 FLAT "link.bin" 0'))
    status, lines = vmm("run", str(disk), "--max-insns", "1000", "--follow-symlinks", capsys=capsys)
    assert status == 1 and len(lines) == 1
    assert f"leads to {outside}, outside the disk's folder" in lines[0]


def bundle(vm: Path, body: str) -> Path:
    vmx = vm / "vm.vmx"
    vmx.write_text('.encoding = "UTF-8"\nconfig.version = "8"\nmemsize = "4"\n' + body)
    return vmx


def test_bundle_serial_file_that_is_a_symlink_is_refused(vm, outside, capsys):
    os.symlink(outside, vm / "serial.log")
    vmx = bundle(vm, 'serial0.present = "TRUE"\nserial0.fileType = "file"\nserial0.fileName = "serial.log"\n')
    status, lines = vmm("run", str(vmx), "--max-insns", "1000", capsys=capsys)
    assert status == 2 and len(lines) == 1
    assert "serial0.fileName: 'serial.log' leads to" in lines[0]
    assert outside.read_bytes().startswith(OUTSIDE)
    assert not (vm / "vm.vmx.lck").exists()


def test_bundle_serial_file_symlinked_inside_needs_follow_symlinks(vm, capsys):
    (vm / "real.log").write_bytes(b"")
    os.symlink("real.log", vm / "serial.log")
    vmx = bundle(vm, 'serial0.present = "TRUE"\nserial0.fileType = "file"\nserial0.fileName = "serial.log"\n')
    status, lines = vmm("run", str(vmx), "--max-insns", "1000", capsys=capsys)
    assert status == 2 and len(lines) == 1 and "is a symbolic link" in lines[0]
    status, lines = vmm("run", str(vmx), "--max-insns", "1000", "--follow-symlinks", capsys=capsys)
    assert status == 124, lines


def test_bundle_disk_behind_a_symlinked_folder_is_refused(vm, tmp_path, capsys):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "disk.img").write_bytes(bytes(1 << 20))
    os.symlink(tmp_path / "elsewhere", vm / "disks")
    vmx = bundle(vm, 'ide0:0.present = "TRUE"\nide0:0.fileName = "disks/disk.img"\n')
    status, lines = vmm("run", str(vmx), "--max-insns", "1000", capsys=capsys)
    assert status == 2 and len(lines) == 1
    assert "ide0:0.fileName: 'disks/disk.img' leads to" in lines[0] and "outside the bundle folder" in lines[0]


def test_renamed_monolithic_sparse_opens_as_in_qemu(tmp_path):
    create_vmdk(tmp_path / "a.vmdk", 2048, "monolithicSparse")
    with VmdkDisk(tmp_path / "a.vmdk") as disk:
        disk.write(5, b"x" * 512)
    os.rename(tmp_path / "a.vmdk", tmp_path / "b.vmdk")
    with VmdkDisk(tmp_path / "b.vmdk") as disk:
        assert disk.read(5, 1) == b"x" * 512
        assert disk.capacity == 2048


def test_sparse_file_never_opens_files_its_embedded_descriptor_names(tmp_path, outside):
    path = tmp_path / "vm" / "s.vmdk"
    path.parent.mkdir()
    create_vmdk(path, 2048, "monolithicSparse")
    data = path.read_bytes().replace(b'"s.vmdk"', b'"' + str(outside).encode() + b'"')
    path.write_bytes(data)
    with VmdkDisk(path) as disk:
        disk.write(0, b"y" * 512)
        assert disk.files() == [str(path)]
    assert outside.read_bytes().startswith(OUTSIDE)


def test_writing_a_zero_extent_is_a_disk_error_not_a_traceback(vm):
    (vm / "flat.bin").write_bytes(bytes(1 << 20))
    disk = vm / "z.vmdk"
    disk.write_text(descriptor('RW 2048 FLAT "flat.bin" 0\nRW 2048 ZERO'))
    with VmdkDisk(disk) as d:
        d.write(0, b"a" * 512)
        with pytest.raises(DiskError, match="extent ZERO is read-only"):
            d.write(2048, b"a" * 512)


def test_disk_commands_take_allow_path_for_a_parent_elsewhere(vm, tmp_path, capsys):
    from vmm.disk.vmdk.create import create_child

    base = tmp_path / "base.vmdk"
    create_vmdk(base, 2048, "monolithicSparse")
    create_child(base, vm / "child.vmdk")
    status, lines = vmm("disk", "info", str(vm / "child.vmdk"), capsys=capsys)
    assert status == 1 and "outside the disk's folder" in lines[0]
    assert main(["disk", "info", "--allow-path", str(base), str(vm / "child.vmdk")]) == 0
    assert f"chain: {vm / 'child.vmdk'} -> " in capsys.readouterr().out
    assert main(["disk", "check", "--allow-path", str(tmp_path), str(vm / "child.vmdk")]) == 0
    assert main(["disk", "commit", "--allow-path", str(base), str(vm / "child.vmdk")]) == 0
