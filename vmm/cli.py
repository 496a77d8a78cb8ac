"""The `vmm` command line.

Every error a user can cause is a VmmError, reported here as one line on stderr with a
non-zero exit status (2 for a bad flag or setting, 1 otherwise); the guest's own exit
status (QEMU's isa-debug-exit convention) becomes vmm's when it writes the exit port.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vmm.config import DiskConfig, MachineConfig, SerialConfig, parse_size
from vmm.errors import ConfigError, VmmError

EXIT_LIMIT = 124  # --timeout or --max-insns reached (as timeout(1))
EXIT_TRIPLE_FAULT = 3
EXIT_ERROR = 1

FAULT_NAMES = {
    0: "#DE divide error", 1: "#DB debug", 2: "NMI", 3: "#BP breakpoint", 4: "#OF overflow",
    5: "#BR bound", 6: "#UD invalid opcode", 7: "#NM no FPU", 8: "#DF double fault",
    10: "#TS invalid TSS", 11: "#NP segment not present", 12: "#SS stack fault",
    13: "#GP general protection", 14: "#PF page fault", 16: "#MF x87 error", 17: "#AC alignment",
    18: "#MC machine check", 19: "#XM SIMD error",
}  # fmt: skip


def describe_fault(vector: int, error: int | None, pc: int) -> str:
    name = FAULT_NAMES.get(vector, f"vector {vector:#x}")
    code = "" if error is None else f" error {error:#x}"
    return f"{name}{code} at pc {pc:#x}"


def _serial_config(text: str) -> SerialConfig:
    if text in ("stdio", "none"):
        return SerialConfig(text)
    kind, _, path = text.partition(":")
    if kind in ("file", "socket", "pipe") and path:
        return SerialConfig(kind, path)
    raise ConfigError(f"--serial: expected stdio, none, file:PATH, socket:HOST:PORT or pipe:PATH, not {text!r}")


def _parse_int(text: str, what: str) -> int:
    try:
        return int(text.replace("_", ""), 0)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a number") from None


def is_bundle(target: str | None) -> bool:
    return bool(target) and (target.endswith(".vmx") or Path(target).is_dir())


def config_from_args(args: argparse.Namespace, bundle=None) -> tuple[MachineConfig, list[str]]:
    """The MachineConfig a `vmm run`/`step`/`trace` command line describes."""
    ignored: list[str] = []
    target = getattr(args, "image", None)
    if bundle is not None or is_bundle(target):
        if bundle is None:
            from vmm.bundle.config import read_bundle

            bundle = read_bundle(Path(target))
        config, ignored = bundle.machine, bundle.ignored_keys
    else:
        config = MachineConfig()
        if target:
            config.disks.append(DiskConfig("ide0:0", Path(target)))
    for i, disk in enumerate(args.disk or []):
        slot = f"ide0:{len(config.disks) + i}" if config.disks or i else "ide0:0"
        config.disks.append(DiskConfig(slot, Path(disk)))
    if args.bios:
        config.bios = Path(args.bios)
    if args.mem:
        config.memory_mb = parse_size(args.mem) // (1 << 20)
    if args.accel:
        config.accel = args.accel
    if getattr(args, "irqchip", None):
        config.irqchip = args.irqchip
    if getattr(args, "serial", None):
        config.serial = _serial_config(args.serial)
    if getattr(args, "realtime", False):
        config.realtime = True
    if getattr(args, "kernel", None):
        config.kernel = Path(args.kernel)
    if getattr(args, "append", None) is not None:
        config.append = args.append
    if getattr(args, "initrd", None):
        config.initrd = Path(args.initrd)
    if getattr(args, "stage_kernel", None):
        config.stage_entries["kernel"] = kernel_entry(args.stage_kernel)
    module = Path(str(config.initrd).split(" ", 1)[0]) if config.initrd is not None else None
    for path in [config.bios, config.kernel, module]:
        if path is not None and not path.exists():
            raise ConfigError(f"{path}: no such file")
    return config.validate(), ignored


def kernel_entry(text: str) -> int:
    """An address, or the entry point of an ELF file."""
    if Path(text).is_file():
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile

        try:
            with open(text, "rb") as f:
                return ELFFile(f)["e_entry"]
        except ELFError as exc:
            raise ConfigError(f"--stage-kernel: {text}: not an ELF file ({exc})") from None
    return _parse_int(text, "--stage-kernel")


def _add_machine_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", nargs="?", help="a raw or VMDK disk image, or a bundle (NAME.vmx or its folder)")
    p.add_argument("--bios", metavar="ROM", help="BIOS ROM image, 64-256 KiB (default: firmware/build/bios.bin)")
    p.add_argument("--disk", metavar="IMG", action="append", help="a disk image (repeat for the slave)")
    p.add_argument("--mem", metavar="SIZE", help="guest RAM, e.g. 64M (default 64M)")
    p.add_argument("--accel", choices=["unicorn", "kvm", "auto"], help="CPU backend (default unicorn)")
    p.add_argument("--irqchip", choices=["user", "kernel"],
                   help="with --accel kvm: vmm's PIC and PIT (user, default) or KVM's in-kernel ones")  # fmt: skip
    p.add_argument("--kernel", metavar="ELF", help="boot a Multiboot ELF kernel directly, as qemu -kernel")
    p.add_argument("--append", metavar="CMDLINE", help="kernel command line (with --kernel)")
    p.add_argument("--initrd", metavar="'FILE [ARGS]'", help="a module for the kernel (with --kernel); "
                   "the whole text is its string, as with qemu")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmm", description="An x86 PC emulator and minimal VMM: boots guest images from the reset vector."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser("run", help="boot a machine; guest serial on stdout, exit status from the guest")
    _add_machine_flags(run)
    run.add_argument("--serial", metavar="WHERE",
                     help="stdio (default), none, file:PATH, or socket:[HOST:]PORT (a TCP server)")  # fmt: skip
    run.add_argument("--max-insns", metavar="N", help=f"stop after N instructions (exit status {EXIT_LIMIT})")
    run.add_argument("--timeout", metavar="S", type=float, help=f"stop after S wall seconds (exit {EXIT_LIMIT})")
    run.add_argument("--stages", action="store_true", help="print each boot stage transition on stderr")
    run.add_argument("--stage-kernel", metavar="ADDR|ELF",
                     help="where the kernel stage starts: an address, or an ELF whose entry it is")  # fmt: skip
    run.add_argument("--realtime", action="store_true", help="timers follow wall time (not reproducible)")
    run.add_argument("--on-triple-fault", choices=["stop", "reset"], default="stop",
                     help="stop with the chain of faults (default) or reset the machine")  # fmt: skip
    run.add_argument("--log-unclaimed", action="store_true",
                     help="report ports and memory the guest touched that no device claims")  # fmt: skip
    run.add_argument("--gdb", metavar="[HOST:]PORT", help="serve the GDB remote protocol")
    run.add_argument("--wait", action="store_true", help="with --gdb: wait for the debugger before running")
    run.add_argument("--screenshot", metavar="PNG", help="save the VGA text screen as PNG when the run ends")
    run.set_defaults(func=cmd_run)

    shot = sub.add_parser("screenshot", help="boot, run N instructions, save the VGA text screen (text and PNG)")
    _add_machine_flags(shot)
    shot.add_argument("--max-insns", metavar="N", default="200000000", help="instructions to run first")
    shot.add_argument("--out", metavar="PNG", required=True, help="where to write the PNG")
    shot.set_defaults(func=cmd_screenshot)

    for module in ("vmm.disk.cli", "vmm.bundle.cli", "vmm.debug.cli", "vmm.testing.cli"):
        try:
            register = __import__(module, fromlist=["register"]).register
        except (ImportError, AttributeError):
            continue
        register(sub)
    return parser


def open_serial(config: MachineConfig):
    """The host end of COM1 (see vmm.serialport)."""
    from vmm import serialport

    kind, path = config.serial.kind, config.serial.path
    if kind == "stdio":
        return serialport.StdoutSerial(sys.stdout.buffer)
    if kind == "none":
        return serialport.SerialEndpoint()
    if kind == "file":
        return serialport.FileSerial(path)
    if kind == "socket":
        return serialport.SocketSerial(path)
    raise ConfigError(f"serial kind {kind!r} is not supported by `vmm run` yet")


class _StdinFeeder:
    """Host keyboard → guest COM1, for interactive use (raw terminal when stdin is a TTY)."""

    def __init__(self, machine) -> None:
        self.machine = machine
        self.fd = sys.stdin.fileno() if sys.stdin and not sys.stdin.closed else None
        self.saved = None
        self.pending = bytearray()
        if self.fd is not None and os.isatty(self.fd):
            import termios
            import tty

            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)
        if self.fd is not None:
            os.set_blocking(self.fd, False)

    def poll(self) -> None:
        if self.pending and self.machine.uart.listening:
            self.machine.send(bytes(self.pending))
            self.pending.clear()
        if self.fd is None:
            return
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            self.fd = None
            return
        if not data:
            self.fd = None
            return
        if self.saved is not None and b"\x1d" in data:  # Ctrl-] leaves, as telnet
            self.machine.request_stop("stopped")
            return
        if self.saved is None:
            # Piped text: a line ends in CR on a serial terminal (what Enter sends), so
            # LF and CR LF both become one CR. It waits until the guest reads COM1: a
            # guest that sets up its UART clears the receive FIFO, losing what came early.
            self.pending.extend(data.replace(b"\r\n", b"\r").replace(b"\n", b"\r"))
            return
        self.machine.send(data)

    def close(self) -> None:
        if self.fd is not None:
            os.set_blocking(self.fd, True)
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


def make_machine(config: MachineConfig, serial_out=None):
    from vmm.cpu.select import cpu_factory_for
    from vmm.machine import Machine

    factory = cpu_factory_for(config.accel, report=lambda line: print(f"vmm: {line}", file=sys.stderr),
                              irqchip=config.irqchip)
    return Machine(config, serial_out=serial_out, cpu_factory=factory)


def cmd_run(args: argparse.Namespace) -> int:
    if is_bundle(args.image):
        from vmm.bundle.config import read_bundle
        from vmm.bundle.lock import VmLock

        bundle = read_bundle(Path(args.image))
        # One monitor per VM; the guest's CMOS goes back into the .nvram at power-off.
        with VmLock(bundle.vmx_path):
            return _run(args, bundle)
    return _run(args, None)


def _run(args: argparse.Namespace, bundle) -> int:
    config, ignored = config_from_args(args, bundle)
    if ignored:
        print(f"vmm: ignoring unsupported keys: {', '.join(ignored)}", file=sys.stderr)
    max_insns = _parse_int(args.max_insns, "--max-insns") if args.max_insns else None
    serial = open_serial(config)
    if config.serial.kind == "socket":
        host, port = serial.address[:2]
        print(f"vmm: COM1 on tcp {host}:{port}", file=sys.stderr, flush=True)
    machine = make_machine(config, serial_out=serial.write)
    serial.attach(machine)
    machine.io.unclaimed.enabled = args.log_unclaimed
    if args.stages:
        machine.on_stage = lambda t: print(f"vmm: {t.describe()}", file=sys.stderr, flush=True)
        print(f"vmm: {machine.stages.timeline[0].describe()}", file=sys.stderr, flush=True)
    feeder = _StdinFeeder(machine) if config.serial.kind == "stdio" else None
    poll = feeder.poll if feeder else serial.poll
    pace = serial.interactive or bool(feeder and feeder.saved is not None)
    gdb = None
    try:
        if args.gdb:
            from vmm.debug.gdbstub import serve_gdb

            gdb = serve_gdb(machine, args.gdb, wait=args.wait)
        deadline = None if max_insns is None else machine.cpu.instructions + max_insns
        while True:
            if gdb is not None:
                # gdb drives the machine: serve() returns when gdb detaches (the run
                # then goes on to the end) or kills it, or when the guest ends.
                result = gdb.serve()
                break
            left = None if deadline is None else max(0, deadline - machine.cpu.instructions)
            result = machine.run(max_instructions=left, timeout=args.timeout,
                                 pace=pace,
                                 poll=poll)  # fmt: skip
            if result.reason == "triple-fault" and args.on_triple_fault == "reset":
                print("vmm: triple fault: resetting", file=sys.stderr)
                machine.reset()
                continue
            break
        if args.screenshot:
            machine.vga.screenshot_png(Path(args.screenshot))
        if bundle is not None:
            bundle.store_cmos(machine.cmos.nvram_bytes())
        if args.log_unclaimed:
            report_unclaimed(machine)
    finally:
        if feeder:
            feeder.close()
        serial.close()
        if gdb:
            gdb.close()
    return report(machine, result, args.stages)


def report_unclaimed(machine) -> None:
    """What the guest probed that no device answers (`vmm run --log-unclaimed`)."""
    ports: dict[tuple[str, int], int] = {}
    for kind, port, _size, _value in machine.io.unclaimed.entries:
        ports[(kind, port)] = ports.get((kind, port), 0) + 1
    listed = ", ".join(f"{kind} {port:#x} x{n}" for (kind, port), n in sorted(ports.items(), key=lambda i: i[0][1]))
    print(f"vmm: unclaimed ports: {machine.io.unclaimed.count} accesses{': ' + listed if listed else ''}",
          file=sys.stderr)  # fmt: skip
    if hasattr(machine.cpu, "unclaimed_memory"):
        count, recent = machine.cpu.unclaimed_memory()
        last = ", ".join(f"{kind} {addr:#x}" for addr, kind in recent)
        print(f"vmm: unclaimed memory: {count} accesses{'; last: ' + last if last else ''}", file=sys.stderr)


def report(machine, result, stages: bool = False) -> int:
    insns = machine.cpu.instructions
    ms = machine.clock.now_ns() / 1e6
    if result.reason == "exit-port":
        if stages:
            print(f"vmm: guest exit status {result.status} after {insns:,} instructions, {ms:.3f} ms",
                  file=sys.stderr)  # fmt: skip
        return result.status
    if result.reason == "triple-fault":
        print(f"vmm: triple fault after {insns:,} instructions; the faults that led to it:", file=sys.stderr)
        for vector, error, pc in result.fault_chain[-3:]:
            print(f"vmm:   {describe_fault(vector, error, pc)}", file=sys.stderr)
        return EXIT_TRIPLE_FAULT
    if result.reason in ("limit", "timeout"):
        print(f"vmm: {result.detail}", file=sys.stderr)
        return EXIT_LIMIT
    if result.reason == "halted":
        print(f"vmm: {result.detail} after {insns:,} instructions", file=sys.stderr)
        return 0
    if result.reason == "stopped":
        return 0
    print(f"vmm: emulation stopped: {result.detail}", file=sys.stderr)
    return EXIT_ERROR


def cmd_screenshot(args: argparse.Namespace) -> int:
    config, _ = config_from_args(args)
    config.serial = SerialConfig("none")
    machine = make_machine(config)
    machine.run(max_instructions=_parse_int(args.max_insns, "--max-insns"))
    print(machine.screen_text())
    machine.vga.screenshot_png(Path(args.out))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except VmmError as exc:
        print(f"vmm: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("vmm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `vmm ... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
