"""vmm create / show / set / nvram, through the functions and through argparse."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmm.bundle import commands
from vmm.bundle.config import load_bundle, read_bundle
from vmm.bundle.lock import VmLock, VmLockedError
from vmm.bundle.nvram import Nvram
from vmm.cli.main import build_parser
from vmm.errors import ConfigError


def test_create_makes_a_bundle_that_loads(tmp_path: Path) -> None:
    vmx = commands.create_bundle(tmp_path / "toy", 8 << 20, memsize_mb=32)
    assert vmx == tmp_path / "toy" / "toy.vmx"
    assert sorted(p.name for p in vmx.parent.iterdir()) == ["toy.nvram", "toy.vmdk", "toy.vmx"]
    assert [p.name for p in tmp_path.iterdir()] == ["toy"]  # no staging folder left
    text = vmx.read_text()
    assert text.startswith('.encoding = "UTF-8"\nconfig.version = "8"\n')
    assert "serial0" not in text
    config, ignored = load_bundle(vmx.parent)
    assert ignored == []
    assert config.name == "toy" and config.memory_mb == 32
    assert [(d.slot, d.path.name) for d in config.disks] == [("ide0:0", "toy.vmdk")]
    assert Nvram.load(vmx.parent / "toy.nvram").boot_order == ["hdd", "cdrom"]
    from vmm.disk.open import open_disk

    with open_disk(config.disks[0].path) as disk:
        assert disk.capacity == (8 << 20) // 512


def test_create_from_image_copies_the_data(tmp_path: Path) -> None:
    image = tmp_path / "boot.img"
    image.write_bytes(b"\xeb\xfe" + bytes(508) + b"\x55\xaa" + bytes(1 << 20))
    vmx = commands.create_bundle(tmp_path / "fromimg", None, from_image=image)
    from vmm.disk.open import open_disk

    with open_disk(vmx.parent / "fromimg.vmdk", read_only=True) as disk:
        assert disk.read(0, 1) == image.read_bytes()[:512]


def test_create_refuses_an_existing_bundle(tmp_path: Path) -> None:
    commands.create_bundle(tmp_path / "toy", 1 << 20)
    with pytest.raises(ConfigError, match="already exists"):
        commands.create_bundle(tmp_path / "toy", 1 << 20)


def test_set_checks_before_saving(tmp_path: Path) -> None:
    vmx = commands.create_bundle(tmp_path / "toy", 1 << 20)
    before = vmx.read_bytes()
    with pytest.raises(ConfigError, match=r"toy.vmx:6: memsize: 'lots' is not a size .* \(nothing saved\)"):
        commands.set_key(vmx, "memsize", "lots")
    with pytest.raises(ConfigError, match=r"ide0:0.fileName: 'other.vmdk': no such file"):
        commands.set_key(vmx, "ide0:0.fileName", "other.vmdk")
    with pytest.raises(ConfigError, match="bad key"):
        commands.set_key(vmx, "mem size", "1")
    assert vmx.read_bytes() == before
    commands.set_key(vmx, "MEMSIZE", "128")
    commands.set_key(vmx, "vmm.stage.kernel", "0x100000")
    commands.set_key(vmx, "guestOS", None)
    text = vmx.read_text()
    assert 'memsize = "128"\n' in text and text.endswith('vmm.stage.kernel = "0x100000"\n')
    assert "guestOS" not in text
    assert read_bundle(vmx).machine.stage_entries == {"kernel": 0x100000}


def test_set_is_refused_while_the_vm_runs(tmp_path: Path) -> None:
    vmx = commands.create_bundle(tmp_path / "toy", 1 << 20)
    with VmLock(vmx), pytest.raises(VmLockedError, match="toy.vmx is in use by vmm process"):
        commands.set_key(vmx, "memsize", "32")


def test_show_explains_each_setting_and_survives_a_broken_bundle(tmp_path: Path) -> None:
    vmx = commands.create_bundle(tmp_path / "toy", 1 << 20)
    vmx.write_text(vmx.read_text() + 'sata0:1.fileName = "x.iso"\n')
    out = commands.show(vmx)
    assert "# memory: 64 MB" in out
    assert "ignoring unsupported keys: sata0:1.fileName" in out
    vmx.write_text(vmx.read_text() + 'numvcpus = "2"\n')
    out = commands.show(vmx.parent)
    assert out.splitlines()[-1].startswith("error: ") and "numvcpus" in out.splitlines()[-1]


def test_nvram_commands(tmp_path: Path) -> None:
    vmx = commands.create_bundle(tmp_path / "toy", 1 << 20)
    (vmx.parent / "cd.iso").write_bytes(bytes(2048))
    for key, value in (("ide0:1.fileName", "cd.iso"), ("ide0:1.deviceType", "cdrom-image"), ("ide0:1.present", "TRUE")):
        commands.set_key(vmx, key, value)
    commands.nvram_set(vmx.parent, "boot.order", "cdrom,hdd")
    commands.nvram_set(vmx, "bios.quiet", "TRUE")
    out = commands.nvram_show(vmx)
    assert "boot.order = cdrom,hdd" in out and "bios.quiet = TRUE" in out
    config, _ = load_bundle(vmx)
    assert config.boot_order == ["cdrom", "hdd"] and config.nvram is not None and config.nvram[0x60] & 1
    with pytest.raises(ConfigError, match="unknown boot device 'tape'"):
        commands.nvram_set(vmx, "boot.order", "tape")


def test_store_cmos_at_power_off(tmp_path: Path) -> None:
    vmx = commands.create_bundle(tmp_path / "toy", 1 << 20)
    bundle = read_bundle(vmx)
    cmos = bytearray(bundle.machine.nvram or bytes(128))
    cmos[0x3D] = 0x03
    bundle.store_cmos(bytes(cmos))
    assert Nvram.load(vmx.parent / "toy.nvram").boot_order == ["cdrom"]


def test_the_bundle_commands_through_the_main_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = str(tmp_path / "cli")
    for argv in (
        ["create", target, "--disk-size", "1M", "--mem", "16M"],
        ["set", target, "memsize", "24"],
        ["nvram", "set", target, "bios.serialConsole", "false"],
        ["nvram", "show", target],
        ["show", target + "/cli.vmx"],
    ):
        args = build_parser(argv).parse_args(argv)
        assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "bios.serialConsole = FALSE" in out and "# memory: 24 MB" in out


def test_set_memsize_reads_sizes_as_create_does(tmp_path: Path) -> None:
    vmx = commands.create_bundle(tmp_path / "toy", 1 << 20)
    commands.set_key(vmx, "memsize", "128M")
    assert 'memsize = "128"' in vmx.read_text()  # saved in MB, as VMware reads it
    assert load_bundle(vmx)[0].memory_mb == 128


def test_set_refuses_a_key_vmm_does_not_read_and_names_the_nearest(tmp_path: Path) -> None:
    vmx = commands.create_bundle(tmp_path / "toy", 1 << 20)
    before = vmx.read_bytes()
    with pytest.raises(ConfigError, match=r"memsze: not a key vmm reads \(did you mean memsize\? nothing saved; "
                                          r"--force writes it anyway\)"):  # fmt: skip
        commands.set_key(vmx, "memsze", "32")
    assert vmx.read_bytes() == before
    commands.set_key(vmx, "memsze", "32", force=True)
    assert 'memsze = "32"' in vmx.read_text()


def test_set_checks_a_file_name_even_on_a_device_switched_off(tmp_path: Path) -> None:
    vmx = commands.create_bundle(tmp_path / "toy", 1 << 20)
    before = vmx.read_bytes()
    with pytest.raises(ConfigError, match=r"ide0:1.fileName: '../x.img' is outside the bundle folder"):
        commands.set_key(vmx, "ide0:1.fileName", "../x.img")
    assert vmx.read_bytes() == before
    commands.set_key(vmx, "memsize", "32")  # the next, unrelated set still works
    assert load_bundle(vmx)[0].memory_mb == 32


def test_nvram_boot_order_names_only_devices_the_machine_has(tmp_path: Path) -> None:
    vmx = commands.create_bundle(tmp_path / "toy", 1 << 20)
    with pytest.raises(ConfigError, match=r"boot.order floppy: this machine has no floppy \(it has hdd; nothing"):
        commands.nvram_set(vmx, "boot.order", "floppy")
    assert Nvram.load(vmx.parent / "toy.nvram").boot_order == ["hdd", "cdrom"]
    commands.nvram_set(vmx, "boot.order", "hdd")
    assert Nvram.load(vmx.parent / "toy.nvram").boot_order == ["hdd"]
