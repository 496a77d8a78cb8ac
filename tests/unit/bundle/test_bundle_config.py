"""From .vmx keys to MachineConfig: what is honoured, refused, and reported as ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.bundle.test_bundle_vmx import FUSION_DEBIAN
from vmm.bundle.config import load_bundle, read_bundle, resolve_bundle
from vmm.bundle.nvram import Nvram
from vmm.errors import ConfigError


def make_bundle(tmp_path: Path, body: str, name: str = "vm") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "disk.img").write_bytes(bytes(1024))
    vmx = folder / f"{name}.vmx"
    vmx.write_text('.encoding = "UTF-8"\nconfig.version = "8"\n' + body)
    return vmx


def test_fusion_bundle_reports_unsupported_keys_once(tmp_path: Path) -> None:
    folder = tmp_path / "Debian 11 console.vmwarevm"
    folder.mkdir()
    vmx = folder / "Debian 11 console.vmx"
    vmx.write_bytes(FUSION_DEBIAN)
    with pytest.raises(ConfigError) as info:
        load_bundle(vmx)
    assert str(info.value) == f'{vmx}:16: firmware: vmm has a BIOS only, no EFI firmware (remove the key or set "bios")'

    text = FUSION_DEBIAN.replace(b'firmware = "efi"\n', b"").replace(b'numvcpus = "2"', b'numvcpus = "1"')
    vmx.write_bytes(text)
    bundle = read_bundle(folder)
    config = bundle.machine
    assert config.name == "Debian 11 console"
    assert config.memory_mb == 2048
    assert bundle.guest_os == "debian11-64"
    assert config.disks == []
    assert [(n.slot, n.connection, n.mac) for n in config.nics] == [("ethernet0", "user", "00:0c:29:62:d3:5f")]
    assert bundle.ignored_keys == [
        "pciBridge0.present",
        "pciBridge4.present",
        "pciBridge4.virtualDev",
        "pciBridge4.functions",
        "vmci0.present",
        "hpet0.present",
        "virtualHW.productCompatibility",
        "powerType.powerOff",
        "powerType.powerOn",
        "tools.syncTime",
        "cpuid.coresPerSocket",
        "mem.hotadd",
        "nvme0.present",
        "nvme0:0.fileName",
        "nvme0:0.present",
        "sata0.present",
        "sata0:1.deviceType",
        "sata0:1.fileName",
        "sata0:1.present",
        "usb.present",
        "ehci.present",
        "svga.graphicsMemoryKB",
        "ethernet0.virtualDev",
        "ethernet0.linkStatePropagation.enable",
    ]
    assert any("e1000e" in note for note in bundle.notes)
    # Reading the bundle changed nothing in the file.
    assert vmx.read_bytes() == text


def test_disks_serial_and_vmm_keys(tmp_path: Path) -> None:
    vmx = make_bundle(
        tmp_path,
        'displayName = "toy"\nmemsize = "32"\nnumvcpus = "1"\nfirmware = "BIOS"\n'
        'ide0:0.present = "true"\nide0:0.fileName = "disk.img"\nide0:0.deviceType = "ata-hardDisk"\n'
        'ide0:1.present = "TRUE"\nide0:1.fileName = "disk.img"\nide0:1.deviceType = "cdrom-image"\n'
        'serial0.present = "TRUE"\nserial0.fileType = "network"\nserial0.fileName = "telnet://:4555"\n'
        'vmm.accel = "kvm"\nvmm.clockMHz = "250"\nvmm.realtime = "False"\nvmm.append = "console=ttyS0"\n'
        'vmm.stage.kernel = "0x100000"\nvmm.kernel = "disk.img"\n',
    )
    config, ignored = load_bundle(vmx)
    assert ignored == []
    folder = vmx.parent.resolve()
    assert [(d.slot, d.path, d.kind, d.read_only) for d in config.disks] == [
        ("ide0:0", folder / "disk.img", "disk", False),
        ("ide0:1", folder / "disk.img", "cdrom", True),
    ]
    assert (config.serial.kind, config.serial.path) == ("socket", "127.0.0.1:4555")
    assert (config.accel, config.clock_mhz, config.realtime) == ("kvm", 250, False)
    assert config.stage_entries == {"kernel": 0x100000}
    assert config.kernel == folder / "disk.img"
    assert config.append == "console=ttyS0"
    assert config.memory_mb == 32
    assert config.boot_order == ["hdd", "cdrom"]
    assert config.nvram is not None and config.nvram[0x3D] == 0x32


def test_nvram_and_boot_order_reach_the_config(tmp_path: Path) -> None:
    vmx = make_bundle(tmp_path, 'nvram = "vm.nvram"\n')
    nvram = Nvram()
    nvram.set("boot.order", "cdrom")
    nvram.set("bios.quiet", "TRUE")
    nvram.save(vmx.parent / "vm.nvram")
    config, _ = load_bundle(vmx.parent)
    assert config.boot_order == ["cdrom"]
    assert config.nvram is not None and config.nvram[0x3D] == 0x03 and config.nvram[0x60] & 1
    vmx.write_text(vmx.read_text() + 'bios.bootOrder = "hdd"\n')
    config, _ = load_bundle(vmx)
    assert config.boot_order == ["hdd"] and config.nvram is not None and config.nvram[0x3D] == 0x02


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('memsize = "lots"\n', "vm.vmx:3: memsize: 'lots' is not a size"),
        ('memsize = "65536"\n', "vm.vmx:3: memsize: 65536 MB is out of range (1-3072 MB)"),
        ('numvcpus = "4"\n', "vm.vmx:3: numvcpus: 4 CPUs asked, but vmm emulates one CPU for now (set it to 1)"),
        (
            'ide0:0.present = "TRUE"\nide0:0.fileName = "gone.vmdk"\n',
            "vm.vmx:4: ide0:0.fileName: 'gone.vmdk': no such file",
        ),
        (
            'ide0:0.present = "TRUE"\nide0:0.fileName = "../disk.img"\n',
            "vm.vmx:4: ide0:0.fileName: '../disk.img' is outside the bundle folder",
        ),
        (
            'ide0:0.present = "TRUE"\nide0:0.fileName = "/etc/passwd"\n',
            "vm.vmx:4: ide0:0.fileName: '/etc/passwd' is outside the bundle folder",
        ),
        (
            'ide0:0.present = "TRUE"\nide0:0.fileName = "disk.img"\nIDE0:0.FILENAME = "disk.img"\n',
            "vm.vmx:5: IDE0:0.FILENAME: set twice (lines 4, 5): keep one",
        ),
        (
            'ide0:0.present = "TRUE"\nide0:0.fileName = "disk.img"\nide0:0.mode = "independent-nonpersistent"\n',
            "vm.vmx:5: ide0:0.mode: 'independent-nonpersistent' disks are not supported yet",
        ),
        ('ide0:0.present = "yes"\n', "vm.vmx:3: ide0:0.present: 'yes' is not a boolean"),
        ('serial0.present = "TRUE"\nserial0.fileType = "device"\n', "vm.vmx:4: serial0.fileType: 'device' (a host"),
        ('ethernet0.present = "TRUE"\nethernet0.generatedAddress = "00:0c:29"\n', "vm.vmx:4: ethernet0.generated"),
        ('vmm.stage.kernel = "entry"\n', "vm.vmx:3: vmm.stage.kernel: 'entry' is not an address"),
        ('vmm.stage.boot = "0x7c00"\n', "vm.vmx:3: vmm.stage.boot: unknown stage 'boot'"),
        ('vmm.acel = "kvm"\n', "vm.vmx:3: vmm.acel: unknown vmm key"),
        ('vmm.clockMHz = "0"\n', "vm.vmx:3: vmm.clockMHz: 0: the virtual clock rate must be positive"),
    ],
)
def test_bad_settings_name_file_line_and_key(tmp_path: Path, body: str, message: str) -> None:
    vmx = make_bundle(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_bundle(vmx)
    assert str(info.value).startswith(f"{vmx.parent.resolve()}/{message}")


def test_outside_paths_need_the_user_not_the_bundle(tmp_path: Path) -> None:
    (tmp_path / "shared.img").write_bytes(bytes(512))
    vmx = make_bundle(
        tmp_path,
        'vmm.allowOutsidePaths = "TRUE"\nide0:0.present = "TRUE"\nide0:0.fileName = "../shared.img"\n',
    )
    with pytest.raises(ConfigError, match=r"'\.\./shared\.img' is outside the bundle folder .* --allow-path"):
        load_bundle(vmx)
    bundle = read_bundle(vmx, allowed=[tmp_path / "shared.img"])
    assert bundle.machine.disks[0].path == tmp_path.resolve() / "shared.img"
    assert any("vmm.allowOutsidePaths" in note for note in bundle.notes)


def test_switched_off_devices_are_not_reported(tmp_path: Path) -> None:
    vmx = make_bundle(
        tmp_path,
        'ide0:1.present = "FALSE"\nide0:1.fileName = "nothere.iso"\nserial0.present = "FALSE"\n'
        'usb.present = "FALSE"\nusb.generic.autoconnect = "TRUE"\nide1:0.fileName = "x.iso"\n',
    )
    config, ignored = load_bundle(vmx)
    assert ignored == ["ide1:0.fileName"]
    assert config.serial.kind == "none"
    assert config.disks == []


def test_resolve_bundle(tmp_path: Path) -> None:
    vmx = make_bundle(tmp_path, "")
    assert resolve_bundle(vmx.parent) == vmx
    assert resolve_bundle(vmx) == vmx
    with pytest.raises(ConfigError, match="no .vmx file"):
        resolve_bundle(tmp_path)
    with pytest.raises(ConfigError, match="not a bundle"):
        resolve_bundle(vmx.parent / "disk.img")


def test_floppy0_is_drive_a(tmp_path: Path) -> None:
    vmx = make_bundle(tmp_path, 'floppy0.present = "TRUE"\nfloppy0.fileType = "file"\nfloppy0.fileName = "a.flp"\n'
                      'floppy0.readonly = "TRUE"\nbios.bootOrder = "floppy,hdd"\n')  # fmt: skip
    (vmx.parent / "a.flp").write_bytes(bytes(1474560))
    bundle = read_bundle(vmx.parent)
    floppy = bundle.machine.floppy
    assert (floppy.slot, floppy.path.name, floppy.kind, floppy.read_only) == ("floppy0", "a.flp", "floppy", True)
    assert bundle.machine.boot_order == ["floppy", "hdd"]
    assert bundle.ignored_keys == []


def test_floppy0_switched_off_empty_or_a_host_drive(tmp_path: Path) -> None:
    off = make_bundle(tmp_path, 'floppy0.present = "FALSE"\nfloppy0.fileName = "a.flp"\n', "off")
    assert read_bundle(off.parent).machine.floppy is None
    empty = make_bundle(tmp_path, 'floppy0.present = "TRUE"\nfloppy0.startConnected = "FALSE"\n', "empty")
    bundle = read_bundle(empty.parent)
    assert bundle.machine.floppy is None and bundle.ignored_keys == []
    host = make_bundle(tmp_path, 'floppy0.present = "TRUE"\nfloppy0.fileType = "device"\n', "host")
    with pytest.raises(ConfigError, match=r"floppy0.fileType: a host floppy drive is not supported"):
        read_bundle(host.parent)
