"""From a bundle's .vmx to a validated MachineConfig.

Each key vmm understands is checked and mapped here; every problem is one ConfigError
naming ``file.vmx:LINE``, the key and what is wrong. Keys vmm does not support stay in
the file untouched and are returned once in :attr:`BundleConfig.ignored_keys`, for the
CLI to print as one line. Devices switched off (``X.present = "FALSE"``) and keys that
only describe the VM (uuid, version, annotation) are accepted silently.

Supported keys (see vmm/bundle/README.md for the full table):
``displayName memsize numvcpus guestOS firmware nvram bios.bootOrder``,
``ide0:0.* ide0:1.*`` (``present fileName deviceType mode startConnected``),
``floppy0.*`` (``present fileType fileName startConnected readonly``),
``serial0.*`` (``present fileType fileName``), ``ethernetN.*`` (``present connectionType
virtualDev addressType generatedAddress address``), and vmm's own ``vmm.*``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vmm.bundle.nvram import ForeignNvramError, Nvram
from vmm.bundle.vmx import VmxFile
from vmm.config import MAX_MEMORY_MB, MIN_MEMORY_MB, DiskConfig, MachineConfig, NicConfig, SerialConfig
from vmm.confine import FileScope, ScopeRefusal, printable
from vmm.errors import ConfigError
from vmm.sizes import parse_memory_mb

# Keys that describe the VM and change nothing in how vmm runs it: accepted silently.
INFORMATIONAL_KEYS = {
    ".encoding", "config.version", "virtualhw.version", "annotation", "uuid.bios", "uuid.location",
    "vc.uuid", "extendedconfigfile", "cleanshutdown", "softpoweroff", "uuid.action",
}  # fmt: skip

VMM_KEYS = {
    "vmm.accel", "vmm.clockmhz", "vmm.realtime", "vmm.kernel", "vmm.initrd", "vmm.append", "vmm.bios",
    "vmm.allowoutsidepaths", "vmm.rtcbase", "vmm.rngseed", "vmm.machine", "vmm.balloon", "vmm.rng",
}  # fmt: skip
STAGES = ("firmware", "bootloader", "kernel", "init")

IDE_UNITS = ("ide0:0", "ide0:1")  # the primary channel; vmm has no secondary ATA channel yet
VIRTIO_DISK_SLOTS = tuple(f"virtio{n}" for n in range(8))  # virtio-blk on the pc machine's PCI bus
NIC_BACKENDS = {"nat": "user", "user": "user", "loopback": "loopback", "null": "null"}
DISK_PROPERTIES = {"present", "filename", "devicetype", "mode", "startconnected", "autodetect", "redo"}
DISK_TYPES = {"disk": "disk", "ata-harddisk": "disk", "cdrom-image": "cdrom"}
PASSTHROUGH_TYPES = {"cdrom-raw", "atapi-cdrom", "rawdisk", "ata-harddisk-raw", "scsi-passthru"}
PERSISTENT_MODES = {"persistent", "independent-persistent"}
FLOPPY_PROPERTIES = {"present", "filetype", "filename", "startconnected", "readonly", "clientdevice"}

SERIAL_PROPERTIES = {
    "present", "filetype", "filename", "startconnected", "pipe.endpoint", "network.endpoint",
    "trynorxloss", "yieldonmsrread",
}  # fmt: skip
NIC_PROPERTIES = {
    "present", "connectiontype", "virtualdev", "addresstype", "generatedaddress", "address",
    "generatedaddressoffset", "startconnected",
}  # fmt: skip
MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


@dataclass
class BundleConfig:
    """Everything read from one bundle."""

    machine: MachineConfig
    vmx_path: Path
    vmx: VmxFile
    nvram_path: Path
    nvram: Nvram  # as loaded (or the defaults when the file does not exist yet)
    nvram_foreign: bool = False  # the .nvram is VMware's: never overwrite it
    guest_os: str | None = None
    ignored_keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what vmm does differently from the file's wish
    meaning: dict[str, str] = field(default_factory=dict)  # lower-case key -> what vmm makes of it

    @property
    def folder(self) -> Path:
        return self.vmx_path.parent

    def store_cmos(self, cmos: bytes) -> None:
        """At power-off: keep the CMOS as the guest left it in the bundle's .nvram.

        The boot order and options are read back from it (the guest's BIOS setup may have
        changed them). A VMware .nvram found in the bundle is left alone.
        """
        if self.nvram_foreign:
            return
        self.nvram.update_from_cmos(bytes(cmos))
        self.nvram.save(self.nvram_path)


def resolve_bundle(path: Path | str) -> Path:
    """The .vmx of a bundle given as ``NAME.vmx`` or as its folder."""
    path = Path(path)
    if path.is_dir():
        named = path / f"{path.resolve().name}.vmx"
        if named.is_file():
            return named
        found = sorted(path.glob("*.vmx"))
        if len(found) == 1:
            return found[0]
        if not found:
            raise ConfigError(f"{path}: no .vmx file in this folder (is it a VM bundle?)")
        raise ConfigError(f"{path}: several .vmx files ({', '.join(p.name for p in found)}): name one")
    if path.suffix.lower() != ".vmx":
        raise ConfigError(f"{path}: not a bundle (expected NAME.vmx or a bundle folder)")
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    return path


def read_bundle(
    path: Path | str, allowed: Iterable[str | os.PathLike[str]] = (), follow_symlinks: bool = False
) -> BundleConfig:
    """Load and check the bundle at ``path`` (``NAME.vmx`` or its folder).

    Files the .vmx names must lie in the bundle folder, with no symlink on the way, unless
    the user named them (``allowed``, from ``--allow-path``) or asked for symlinks to be
    followed (``--follow-symlinks``): see vmm.confine.
    """
    vmx_path = resolve_bundle(path)
    vmx_path = Path(os.path.abspath(vmx_path))
    return build_config(
        VmxFile.load(vmx_path), vmx_path, FileScope.of(vmx_path.parent, allowed, follow_symlinks, "bundle folder")
    )


def load_bundle(path: Path | str) -> tuple[MachineConfig, list[str]]:
    """What ``vmm run NAME.vmx`` needs: the validated MachineConfig and the ignored keys."""
    bundle = read_bundle(path)
    return bundle.machine, bundle.ignored_keys


def build_config(vmx: VmxFile, vmx_path: Path, scope: FileScope | None = None) -> BundleConfig:
    vmx_path = Path(os.path.abspath(vmx_path))
    return _Reader(vmx, vmx_path, scope or FileScope.of(vmx_path.parent, kind="bundle folder")).build()


def parse_vmx_bool(text: str) -> bool | None:
    upper = text.strip().upper()
    return {"TRUE": True, "FALSE": False}.get(upper)


class _Reader:
    def __init__(self, vmx: VmxFile, vmx_path: Path, scope: FileScope) -> None:
        self.vmx = vmx
        self.scope = scope
        self.vmx_path = vmx_path
        self.folder = vmx_path.parent
        self.used: set[str] = set()
        self.meaning: dict[str, str] = {}
        self.notes: list[str] = []
        self.not_honoured: set[str] = set()  # keys read but whose wish vmm cannot follow
        self.nvram_foreign = False

    # ---- helpers -------------------------------------------------------------------

    def error(self, key: str, message: str) -> ConfigError:
        spelled = next((k for k in self.vmx.keys() if k.lower() == key.lower()), key)
        return ConfigError(f"{self.vmx.where(key)}: {spelled}: {message}")

    def get(self, key: str, meaning: str | None = None) -> str | None:
        value = self.vmx.get(key)
        if value is not None:
            self.used.add(key.lower())
            if meaning is not None:
                self.meaning[key.lower()] = meaning
        return value

    def explain(self, key: str, meaning: str) -> None:
        if key in self.vmx:
            self.meaning[key.lower()] = meaning

    def boolean(self, key: str, default: bool) -> bool:
        value = self.get(key)
        if value is None:
            return default
        parsed = parse_vmx_bool(value)
        if parsed is None:
            raise self.error(key, f'{value!r} is not a boolean (use "TRUE" or "FALSE")')
        return parsed

    def integer(self, key: str, base: int = 10, what: str = "a whole number") -> int | None:
        value = self.get(key)
        if value is None:
            return None
        try:
            return int(value.strip().replace("_", ""), base)
        except ValueError:
            raise self.error(key, f"{value!r} is not {what}") from None

    def memory_mb(self, key: str) -> int | None:
        """MB, as VMware writes it (``"64"``), or any size vmm reads (``"64M"``, ``"1G"``)."""
        value = self.get(key)
        if value is None:
            return None
        try:
            return parse_memory_mb(value, key)
        except ConfigError as exc:
            raise self.error(key, str(exc).removeprefix(f"{key}: ")) from None

    def path(self, key: str, must_exist: bool = True) -> Path | None:
        value = self.get(key)
        if value is None or value == "":
            return None
        full = Path(os.path.normpath(self.folder / value))
        try:
            self.scope.check(full, repr(printable(value)))
        except ScopeRefusal as exc:
            raise self.error(key, str(exc)) from None
        if must_exist and not full.is_file():
            raise self.error(key, f"{printable(value)!r}: no such file ({printable(full)})")
        return full

    # ---- the mapping ---------------------------------------------------------------

    def build(self) -> BundleConfig:
        if self.boolean("vmm.allowOutsidePaths", False):
            # A bundle cannot widen its own reach: a downloaded .vmx would name any host file.
            self.notes.append(
                'vmm.allowOutsidePaths = "TRUE" is not honoured: name files outside the bundle folder with --allow-path'
            )
        self.explain("vmm.allowOutsidePaths", "not honoured: files outside the bundle need --allow-path")
        machine = MachineConfig(
            name=self.vmx_path.stem,
            allowed_paths=[Path(p) for p in self.scope.allowed],
            follow_symlinks=self.scope.follow_symlinks,
        )
        name = self.get("displayName")
        if name:
            machine.name = name
            self.explain("displayName", f"name: {name}")
        guest_os = self.get("guestOS", "guest OS (informational)")
        self._cpu_memory_firmware(machine)
        nvram_path, nvram = self._nvram(machine)
        self._disks(machine)
        self._serial(machine)
        self._nics(machine)
        self._vmm_keys(machine)
        self._check_duplicates()
        try:
            machine.validate()
        except ConfigError as exc:
            raise ConfigError(f"{self.vmx.name}: {exc}") from None
        for key in INFORMATIONAL_KEYS:
            self.explain(key, "informational")
        return BundleConfig(
            machine=machine,
            vmx_path=self.vmx_path,
            vmx=self.vmx,
            nvram_path=nvram_path,
            nvram=nvram,
            nvram_foreign=self.nvram_foreign,
            guest_os=guest_os,
            ignored_keys=self._ignored(),
            notes=self.notes,
            meaning=self.meaning,
        )

    def _cpu_memory_firmware(self, machine: MachineConfig) -> None:
        firmware = self.get("firmware")
        if firmware is not None:
            if firmware.lower() == "efi":
                raise self.error("firmware", 'vmm has a BIOS only, no EFI firmware (remove the key or set "bios")')
            if firmware.lower() != "bios":
                raise self.error("firmware", f'unknown firmware {firmware!r} (vmm has "bios")')
            self.explain("firmware", "BIOS")
        memsize = self.memory_mb("memsize")
        if memsize is not None:
            if not MIN_MEMORY_MB <= memsize <= MAX_MEMORY_MB:
                raise self.error("memsize", f"{memsize} MB is out of range ({MIN_MEMORY_MB}-{MAX_MEMORY_MB} MB)")
            machine.memory_mb = memsize
            self.explain("memsize", f"memory: {memsize} MB")
        cpus = self.integer("numvcpus", what="a whole number of CPUs")
        if cpus is not None:
            if cpus != 1:
                raise self.error("numvcpus", f"{cpus} CPUs asked, but vmm emulates one CPU for now (set it to 1)")
            self.explain("numvcpus", "1 CPU")

    def _nvram(self, machine: MachineConfig) -> tuple[Path, Nvram]:
        path = self.path("nvram", must_exist=False)
        if path is None:
            path = self.folder / f"{self.vmx_path.stem}.nvram"
            try:
                self.scope.check(path)
            except ScopeRefusal as exc:
                raise ConfigError(f"{self.vmx_path.name}: nvram: {exc}") from None
        if path.exists():
            try:
                nvram = Nvram.load(path)
                self.explain("nvram", f"firmware settings: {path.name}")
            except ForeignNvramError:
                nvram = Nvram()
                self.nvram_foreign = True
                self.notes.append(f"{path.name} is not a vmm nvram (VMware's?): BIOS defaults used, file left alone")
                self.explain("nvram", f"firmware settings: {path.name} is VMware's: defaults used, left alone")
        else:
            nvram = Nvram()
            self.explain("nvram", f"firmware settings: {path.name} (not there yet: defaults, created on first run)")
        order = self.get("bios.bootOrder")
        if order:
            try:
                nvram.set("boot.order", order.replace("ethernet", "net"))
            except ConfigError as exc:
                raise self.error("bios.bootOrder", str(exc).split(": ", 1)[1]) from None
            self.explain("bios.bootOrder", f"boot order {','.join(nvram.boot_order)} (overrides the .nvram)")
        machine.nvram = nvram.cmos
        machine.boot_order = list(nvram.boot_order)
        return path, nvram

    def _device_keys(self, device: str) -> dict[str, str]:
        """lower-case property -> key as spelled, for every key of ``device`` ("ide0:0")."""
        prefix = device.lower() + "."
        return {key.lower()[len(prefix) :]: key for key in self.vmx.keys() if key.lower().startswith(prefix)}

    def _mark_device(self, device: str, known: set[str], meaning: str) -> None:
        for prop, key in self._device_keys(device).items():
            if prop in known:
                self.used.add(key.lower())
                self.meaning.setdefault(key.lower(), meaning)

    def _disks(self, machine: MachineConfig) -> None:
        if self.vmx.get("ide0.present") is not None:
            self.boolean("ide0.present", True)
            self.explain("ide0.present", "primary IDE channel")
        for slot in IDE_UNITS + VIRTIO_DISK_SLOTS:
            if not self._device_keys(slot):
                continue
            if not self.boolean(f"{slot}.present", False):
                if self.vmx.get(f"{slot}.fileName"):
                    self.path(f"{slot}.fileName", must_exist=False)  # confined even while switched off
                if self.vmx.get(f"{slot}.fileName") and self.vmx.get(f"{slot}.present") is None:
                    self.notes.append(f'{slot}.fileName is set but not {slot}.present = "TRUE": no device there')
                self._mark_device(slot, set(self._device_keys(slot)), f"{slot}: not present")
                continue
            disk = self._disk(slot)
            if disk is not None:
                machine.disks.append(disk)
        self._floppy(machine)

    def _floppy(self, machine: MachineConfig) -> None:
        """``floppy0.*``: drive A: with an image file (VMware's fileType "file")."""
        slot = "floppy0"
        if not self._device_keys(slot):
            return
        if not self.boolean(f"{slot}.present", False):
            if self.vmx.get(f"{slot}.fileName"):
                self.path(f"{slot}.fileName", must_exist=False)  # confined even while switched off
            self._mark_device(slot, set(self._device_keys(slot)), "drive A: not present")
            return
        file_type = (self.get(f"{slot}.fileType") or "file").lower()
        if file_type == "device":
            raise self.error(f"{slot}.fileType", "a host floppy drive is not supported (use an image: file)")
        if file_type != "file":
            raise self.error(f"{slot}.fileType", f"unknown floppy type {file_type!r} (use file)")
        if not self.boolean(f"{slot}.startConnected", True) or not self.get(f"{slot}.fileName"):
            self._mark_device(slot, FLOPPY_PROPERTIES, "drive A: empty")
            self.notes.append("floppy0: drive A: without a disk at power-on is left out")
            return
        path = self.path(f"{slot}.fileName")
        assert path is not None
        read_only = self.boolean(f"{slot}.readonly", False)
        self._mark_device(slot, FLOPPY_PROPERTIES, f"drive A: {path.name}{' (read-only)' if read_only else ''}")
        machine.disks.append(DiskConfig(slot=slot, path=path, kind="floppy", read_only=read_only))

    def _disk(self, slot: str) -> DiskConfig | None:
        kind_text = self.get(f"{slot}.deviceType") or "ata-hardDisk"
        kind = DISK_TYPES.get(kind_text.lower())
        if kind is None:
            if kind_text.lower() in PASSTHROUGH_TYPES:
                raise self.error(f"{slot}.deviceType", f"{kind_text!r}: host device passthrough is not supported")
            raise self.error(f"{slot}.deviceType", f"unknown device type {kind_text!r} (use disk or cdrom-image)")
        mode = self.get(f"{slot}.mode") or "persistent"
        if mode.lower() not in PERSISTENT_MODES:
            raise self.error(
                f"{slot}.mode", f"{mode!r} disks are not supported yet: vmm writes disks in place (use persistent)"
            )
        if not self.boolean(f"{slot}.startConnected", True):
            self._mark_device(slot, DISK_PROPERTIES, f"{slot}: not connected at power-on")
            self.notes.append(f"{slot} is not connected at power-on (startConnected = FALSE)")
            return None
        if not self.get(f"{slot}.fileName"):
            if kind == "cdrom":
                self._mark_device(slot, DISK_PROPERTIES, f"{slot}: empty CD-ROM drive")
                self.notes.append(f"{slot}: CD-ROM drive without a medium is left out")
                return None
            raise self.error(f"{slot}.fileName", "a present disk needs a file name")
        path = self.path(f"{slot}.fileName")
        assert path is not None
        self.get(f"{slot}.autodetect")
        self.get(f"{slot}.redo")
        self._mark_device(slot, DISK_PROPERTIES, f"{slot}: {kind} {path.name}")
        return DiskConfig(slot=slot, path=path, kind=kind, read_only=kind == "cdrom")

    def _serial(self, machine: MachineConfig) -> None:
        if not self._device_keys("serial0"):
            return  # no serial0 keys: COM1 on the terminal
        if not self.boolean("serial0.present", False):
            machine.serial = SerialConfig("none")
            self._mark_device("serial0", set(self._device_keys("serial0")), "COM1: output discarded")
            return
        file_type = (self.get("serial0.fileType") or "file").lower()
        name = self.get("serial0.fileName") or ""
        if file_type == "file":
            if not name:
                raise self.error("serial0.fileName", "a serial port to a file needs a file name")
            path = self.path("serial0.fileName", must_exist=False)
            machine.serial = SerialConfig("file", str(path), scope=self.scope)
        elif file_type == "network":
            machine.serial = SerialConfig("socket", self._socket_address(name))
        elif file_type == "pipe":
            if not name:
                raise self.error("serial0.fileName", "a serial port to a pipe needs a pipe path")
            machine.serial = SerialConfig("pipe", name if os.path.isabs(name) else str(self.folder / name))
        elif file_type in ("device", "thinprint"):
            raise self.error(
                "serial0.fileType", f"{file_type!r} (a host port) is not supported: use file, pipe or network"
            )
        else:
            raise self.error("serial0.fileType", f"unknown serial port type {file_type!r} (use file, pipe or network)")
        where = machine.serial.path
        self._mark_device("serial0", SERIAL_PROPERTIES, f"COM1 -> {machine.serial.kind} {where}")

    def _socket_address(self, name: str) -> str:
        # VMware writes "telnet://:8888", "tcp://127.0.0.1:8888" or "host:port".
        address = re.sub(r"^[a-z]+://", "", name.strip(), flags=re.IGNORECASE)
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise self.error("serial0.fileName", f"{name!r} is not a network address (use tcp://HOST:PORT)")
        return f"{host or '127.0.0.1'}:{port}"

    def _nics(self, machine: MachineConfig) -> None:
        slots = sorted(
            {m.group(1).lower() for key in self.vmx.keys() if (m := re.match(r"^(ethernet\d+)\.", key, re.I))},
            key=lambda s: int(s[8:]),
        )
        for slot in slots:
            if not self.boolean(f"{slot}.present", False):
                self._mark_device(slot, set(self._device_keys(slot)), f"{slot}: not present")
                continue
            nic = NicConfig(slot=slot, connection="user")
            connection = (self.get(f"{slot}.connectionType") or "nat").lower()
            if connection in NIC_BACKENDS:
                nic.connection = NIC_BACKENDS[connection]
            else:
                self.not_honoured.add(f"{slot}.connectiontype")
                self.notes.append(f"{slot}: {connection} networking is not available; vmm uses NAT (user) networking")
            device = self.get(f"{slot}.virtualDev")
            if device is not None and device.lower() != "virtio":
                self.not_honoured.add(f"{slot}.virtualdev")
                self.notes.append(f"{slot}: vmm does not emulate {device!r}; the guest sees vmm's own NIC")
            address_type = (self.get(f"{slot}.addressType") or "generated").lower()
            if address_type == "static":
                key = f"{slot}.address"
            elif address_type in ("generated", "vpx"):
                key = f"{slot}.generatedAddress"
            else:
                raise self.error(f"{slot}.addressType", f"unknown address type {address_type!r} (generated or static)")
            mac = self.get(key)
            if address_type == "static" and not mac:
                raise self.error(f"{slot}.addressType", f'"static" needs {slot}.address = "00:50:56:XX:YY:ZZ"')
            if mac:
                if not MAC.match(mac):
                    raise self.error(key, f"{mac!r} is not a MAC address (six hex pairs with ':')")
                nic.mac = mac.lower()
            self.get(f"{slot}.generatedAddressOffset")
            if not self.boolean(f"{slot}.startConnected", True):
                self.notes.append(f"{slot} is not connected at power-on (startConnected = FALSE)")
                self._mark_device(slot, NIC_PROPERTIES, f"{slot}: not connected")
                continue
            machine.nics.append(nic)
            mac = nic.mac or "generated"
            self._mark_device(slot, NIC_PROPERTIES, f"{slot}: virtio-net, {nic.connection} network, MAC {mac}")
        for key in self.not_honoured:
            self.meaning[key] = "not honoured (see notes)"

    def _vmm_keys(self, machine: MachineConfig) -> None:
        accel = self.get("vmm.accel")
        if accel is not None:
            if accel.lower() not in ("unicorn", "kvm", "auto"):
                raise self.error("vmm.accel", f"unknown accelerator {accel!r} (unicorn, kvm or auto)")
            machine.accel = accel.lower()
            self.explain("vmm.accel", f"CPU backend: {machine.accel}")
        clock = self.integer("vmm.clockMHz", what="a whole number of MHz")
        if clock is not None:
            if clock <= 0:
                raise self.error("vmm.clockMHz", f"{clock}: the virtual clock rate must be positive")
            machine.clock_mhz = clock
            self.explain("vmm.clockMHz", f"virtual clock: {clock} instructions per microsecond")
        machine_type = self.get("vmm.machine")
        if machine_type is not None:
            if machine_type.lower() not in ("isapc", "pc"):
                raise self.error("vmm.machine", f"unknown machine type {machine_type!r} (isapc or pc)")
            machine.machine = machine_type.lower()
            self.explain("vmm.machine", f"machine type {machine.machine}")
        balloon = self.integer("vmm.balloon", what="a size in MB to ask the guest to give back")
        if balloon is not None:
            machine.balloon, machine.balloon_target_mb = True, balloon
            self.explain("vmm.balloon", f"virtio-balloon, target {balloon} MB")
        machine.rng = self.boolean("vmm.rng", True)
        self.explain("vmm.rng", "virtio-rng (pc machine)" if machine.rng else "no virtio-rng")
        machine.realtime = self.boolean("vmm.realtime", False)
        self.explain("vmm.realtime", "timers follow wall time" if machine.realtime else "deterministic virtual time")
        rtc_base = self.get("vmm.rtcBase")
        if rtc_base is not None:
            machine.rtc_base = rtc_base
            self.explain("vmm.rtcBase", f"RTC at power-on: {rtc_base}")
        seed = self.integer("vmm.rngSeed", base=0, what="a number")
        if seed is not None:
            machine.rng_seed = seed
            self.explain("vmm.rngSeed", f"RDRAND/RDSEED seed: {seed}")
        setters: dict[str, Callable[[Path], None]] = {
            "vmm.kernel": lambda p: setattr(machine, "kernel", p),
            "vmm.initrd": lambda p: setattr(machine, "initrd", p),
            "vmm.bios": lambda p: setattr(machine, "bios", p),
        }
        for key, assign in setters.items():
            path = self.path(key)
            if path is not None:
                assign(path)
                self.explain(key, f"{key[4:]}: {path}")
        append = self.get("vmm.append")
        if append is not None:
            machine.append = append
            self.explain("vmm.append", f"kernel command line: {append!r}")
        for key in self.vmx.keys():
            lower = key.lower()
            if lower.startswith("vmm.stage."):
                stage = lower[len("vmm.stage.") :]
                if stage not in STAGES:
                    raise self.error(key, f"unknown stage {stage!r} (stages: {', '.join(STAGES)})")
                address = self.integer(key, base=0, what="an address (e.g. 0x100000)")
                assert address is not None
                if not 0 <= address < 1 << 64:
                    raise self.error(key, f"{address:#x} is not a 64-bit address")
                machine.stage_entries[stage] = address
                self.explain(key, f"stage {stage!r} starts at {address:#x}")
            elif lower.startswith("vmm.") and lower not in VMM_KEYS:
                known = "vmm.machine, vmm.balloon, vmm.rng, "
                known += "vmm.accel, vmm.clockMHz, vmm.realtime, vmm.kernel, vmm.initrd, vmm.append, vmm.bios, "
                known += "vmm.rtcBase, vmm.rngSeed, vmm.stage.NAME, vmm.allowOutsidePaths"
                raise self.error(key, f"unknown vmm key (known: {known})")

    def _check_duplicates(self) -> None:
        for key, lines in self.vmx.duplicates():
            if key.lower() in self.used:
                raise self.error(key, f"set twice (lines {', '.join(map(str, lines))}): keep one")

    def _ignored(self) -> list[str]:
        ignored = []
        for key in self.vmx.keys():
            lower = key.lower()
            if lower in self.not_honoured:
                ignored.append(key)
            elif lower in self.used or lower in INFORMATIONAL_KEYS or self._switched_off(lower):
                continue
            elif lower == "checkpoint.vmstate":
                # the suspended state vmm run resumes from (vmm.snapshot.bundle)
                self.meaning.setdefault(lower, "suspended: vmm run resumes from this checkpoint")
                continue
            else:
                ignored.append(key)
                self.meaning.setdefault(lower, "ignored: not supported by vmm")
        return ignored

    def _switched_off(self, lower: str) -> bool:
        """A key of a device (or its controller) whose ``present`` is FALSE."""
        device = lower.rsplit(".", 1)[0] if "." in lower else lower
        while True:
            present = self.vmx.get(f"{device}.present")
            if present is not None and parse_vmx_bool(present) is False:
                self.meaning.setdefault(lower, f"{device}: not present")
                return True
            if "." not in device:
                # ide1:0 belongs to controller ide1
                if ":" in device:
                    device = device.split(":", 1)[0]
                    continue
                return False
            device = device.rsplit(".", 1)[0]
