"""``vmm run``: its flags, the run loop, and the exit status it reports.

Exit status: the guest's own when it writes the exit port (QEMU's isa-debug-exit
convention: always odd); 0 when the guest halts or the user leaves (Ctrl-]); 4 when the
BIOS finds no bootable disk; 124 when --timeout or --max-insns is reached (as timeout(1));
3 on a triple fault; 1 when emulation stops on an error; 2 for a bad flag or setting.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vmm.cli.machine_flags import (
    add_machine_flags,
    config_from_args,
    is_bundle,
    make_machine,
    output_path,
    scope_args,
    write_output,
)
from vmm.cli.main import started
from vmm.config import MachineConfig
from vmm.errors import ConfigError
from vmm.sizes import parse_count

EXIT_LIMIT = 124  # --timeout or --max-insns reached (as timeout(1))
EXIT_TRIPLE_FAULT = 3
EXIT_NO_BOOT = 4  # the BIOS found nothing to boot (see vmm.cli.bootfail)
EXIT_ERROR = 1


def add_arguments(name: str, run: argparse.ArgumentParser) -> None:
    add_machine_flags(run)
    run.add_argument("--serial", metavar="WHERE",
                     help="stdio (default), none, file:PATH, or socket:[HOST:]PORT (a TCP server)")  # fmt: skip
    run.add_argument("--max-insns", metavar="N", help=f"stop after N instructions, e.g. 3M (exit status {EXIT_LIMIT})")
    run.add_argument("--timeout", metavar="S", help=f"stop after S wall seconds (exit {EXIT_LIMIT})")
    run.add_argument("--stages", action="store_true", help="print each boot stage transition on stderr")
    run.add_argument("--stage-kernel", metavar="ADDR|ELF",
                     help="where the kernel stage starts: an address, or an ELF whose entry it is")  # fmt: skip
    run.add_argument("--keys", choices=["auto", "ps2", "serial"], default="auto",
                     help="where typed keys go: the PS/2 keyboard as scan codes, COM1 as bytes, or auto: "
                          "COM1 once the guest enables its receive interrupt, else the keyboard")  # fmt: skip
    run.add_argument("--no-bios-serial", action="store_true",
                     help="the BIOS does not copy screen text to COM1 (it stops by itself once the guest "
                          "programs COM1)")  # fmt: skip
    run.add_argument("--realtime", action="store_true", help="timers follow wall time (not reproducible)")
    run.add_argument("--on-triple-fault", choices=["stop", "reset"], default="stop",
                     help="stop with the chain of faults (default) or reset the machine")  # fmt: skip
    run.add_argument("--log-unclaimed", action="store_true",
                     help="report ports and memory the guest touched that no device claims")  # fmt: skip
    run.add_argument("--gdb", metavar="[HOST:]PORT", help="serve the GDB remote protocol")
    run.add_argument("--wait", action="store_true", help="with --gdb: wait for the debugger before running")
    run.add_argument("--screenshot", metavar="PNG", help="save the VGA screen (text or graphics) as PNG at the end")
    run.add_argument("--check-determinism", metavar="SEED", nargs="?", const=0, type=int,
                     help="run twice, in one slice and in small random slices (seeded, default 0), "
                          "and report the first difference (exit 0: none, 1: one)")  # fmt: skip
    from vmm.control.session import add_flags as add_control_flags

    add_control_flags(run)
    run.set_defaults(func=cmd_run, gc_paused_setup=True)  # started() once the machine is built


def parse_seconds(text: str, what: str) -> float:
    """A wall-clock limit: a finite number of seconds above zero (not -1, not nan)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise ConfigError(f"{what}: {text!r} is not a number of seconds above zero")
    return value


def open_serial(config: MachineConfig):
    """The host end of COM1 (see vmm.serialport)."""
    from vmm import serialport

    kind, path = config.serial.kind, config.serial.path
    if kind == "stdio":
        return serialport.StdoutSerial(sys.stdout.buffer)
    if kind == "none":
        return serialport.SerialEndpoint()
    if kind == "file":
        return serialport.FileSerial(path, scope=config.serial.scope)
    if kind == "socket":
        return serialport.SocketSerial(path)
    raise ConfigError(f"serial kind {kind!r} is not supported by `vmm run` yet")


def cmd_run(args: argparse.Namespace) -> int:
    if is_bundle(args.image):
        from vmm.bundle.config import read_bundle
        from vmm.bundle.lock import VmLock

        bundle = read_bundle(Path(args.image), *scope_args(args))
        if getattr(args, "from_snapshot", None):
            return _run(args, bundle)  # the bundle is only read: no lock (many VMs may start from one snapshot)
        # One monitor per VM; the guest's CMOS goes back into the .nvram at power-off.
        with VmLock(bundle.vmx_path):
            return _run(args, bundle)
    return _run(args, None)


def _run(args: argparse.Namespace, bundle) -> int:
    if args.wait and not args.gdb:
        raise ConfigError("--wait waits for a debugger: it needs --gdb [HOST:]PORT")
    max_insns = parse_count(args.max_insns, "--max-insns") if args.max_insns else None
    timeout = parse_seconds(args.timeout, "--timeout") if args.timeout is not None else None
    screenshot = output_path(args.screenshot, "--screenshot") if args.screenshot else None
    config, ignored = config_from_args(args, bundle)
    if ignored:
        print(f"vmm: ignoring unsupported keys: {', '.join(ignored)}", file=sys.stderr)
    if args.check_determinism is not None:
        from vmm.determinism import report as check_determinism

        return check_determinism(config, make_machine, max_insns, args.check_determinism)
    from vmm.control.session import RunSession

    session = RunSession(args, bundle, config)  # a resume or --from-snapshot: before the machine is built
    serial = open_serial(config)
    if config.serial.kind == "socket":
        host, port = serial.address[:2]
        print(f"vmm: COM1 on tcp {host}:{port}", file=sys.stderr, flush=True)
    machine = make_machine(config, serial_out=serial.write)
    serial.attach(machine)
    machine.log_unclaimed(args.log_unclaimed)
    from vmm.cli.terminal import GdbKeys, StdinFeeder

    feeder = StdinFeeder(machine, args.keys) if config.serial.kind == "stdio" else None
    if feeder is not None:

        def poll() -> None:
            serial.flush()  # a partial line on stdout goes out between slices
            feeder.poll()

    else:
        poll = serial.poll
    try:
        poll = session.start(machine, poll)
    except BaseException:
        session.close()
        raise
    end = feeder.line_end() if feeder else "\n"
    if args.stages:

        def on_stage(transition) -> None:
            serial.flush()  # the guest's output so far comes before the stage line
            print(f"vmm: {transition.describe()}", end=end, file=sys.stderr, flush=True)

        machine.on_stage = on_stage
        print(f"vmm: {machine.stages.timeline[0].describe()}", end=end, file=sys.stderr, flush=True)
    pace = serial.interactive or bool(feeder and feeder.raw)
    started()  # the collector runs from here (see vmm.cli.main)
    gdb = None
    gdb_keys = GdbKeys(feeder) if args.gdb else None
    try:
        if args.gdb:
            from vmm.debug.gdbstub import serve_gdb

            if feeder is not None:
                feeder.stop_on_leave = False  # the stub stops the machine itself (between its runs)
            gdb = serve_gdb(machine, args.gdb, wait=args.wait, poll=poll, left=gdb_keys.left)
        deadline = None if max_insns is None else machine.cpu.instructions + max_insns
        # One wall-clock budget for the whole run, resets included.
        wall_end = None if timeout is None else time.monotonic() + timeout
        while True:
            if gdb is not None:
                # gdb drives the machine: serve() returns when gdb detaches (the run
                # then goes on to the end) or kills it, or when the guest ends;
                # --max-insns and --timeout hold while no debugger is attached.
                result = gdb.serve(max_instructions=max_insns, timeout=timeout)
                break
            left = None if deadline is None else max(0, deadline - machine.cpu.instructions)
            wall = None if wall_end is None else max(0.0, wall_end - time.monotonic())
            if wall == 0.0:  # a guest that keeps resetting never lets machine.run see its timeout
                from vmm.machine import MachineExit

                result = MachineExit("timeout")
                break
            result = machine.run(max_instructions=left, timeout=wall,
                                 pace=pace,
                                 poll=poll)  # fmt: skip
            if result.reason == "triple-fault" and args.on_triple_fault == "reset":
                serial.flush()
                print("vmm: triple fault: resetting", end=end, file=sys.stderr)
                machine.reset()
                continue
            break
        if result.reason == "timeout":
            result.detail = f"stopped after {timeout:g} s of wall time"
        elif result.reason == "limit" and max_insns is not None:
            result.detail = f"stopped after {max_insns:,} instructions"
            if session.saved is not None:  # resumed: say where that is since power-on
                result.detail += f" (at instruction {machine.instructions:,} since power-on)"
        if screenshot is not None:
            write_output(screenshot, "--screenshot", machine.vga.screenshot_png)
        if bundle is not None and not getattr(args, "from_snapshot", None):
            bundle.store_cmos(machine.cmos.nvram_bytes())
        if args.log_unclaimed:
            report_unclaimed(machine)
    finally:
        session.close()
        if gdb_keys:
            gdb_keys.close()
        if feeder:
            feeder.close()
        serial.close()
        if gdb:
            gdb.close()
    return report(machine, result, args.stages)


def report_unclaimed(machine) -> None:
    """What the guest probed that no device answers (`vmm run --log-unclaimed`)."""
    unclaimed = machine.unclaimed()  # both backends: ports, and memory from the CPU and the MMIO bus
    ports: dict[tuple[str, int], int] = {}
    for kind, port, _size, _value in unclaimed.ports:
        ports[(kind, port)] = ports.get((kind, port), 0) + 1
    listed = ", ".join(f"{kind} {port:#x} x{n}" for (kind, port), n in sorted(ports.items(), key=lambda i: i[0][1]))
    print(f"vmm: unclaimed ports: {unclaimed.port_count} accesses{': ' + listed if listed else ''}",
          file=sys.stderr)  # fmt: skip
    last = ", ".join(f"{kind} {addr:#x}" for addr, kind in unclaimed.memory)
    print(
        f"vmm: unclaimed memory: {unclaimed.memory_count} accesses{'; last: ' + last if last else ''}", file=sys.stderr
    )


def report(machine, result, stages: bool = False) -> int:
    from vmm.cpu.faults import describe_fault

    insns = machine.cpu.instructions
    ms = machine.clock.now_ns() / 1e6
    if result.reason == "exit-port":
        if stages:
            print(f"vmm: guest exit status {result.status} after {insns:,} instructions, {ms:.3f} ms",
                  file=sys.stderr)  # fmt: skip
        return result.status
    if result.reason == "triple-fault":
        print(f"vmm: triple fault after {insns:,} instructions; the faults that led to it:", file=sys.stderr)
        for fault in result.fault_chain[-3:]:
            print(f"vmm:   {describe_fault(*fault)}", file=sys.stderr)
        return EXIT_TRIPLE_FAULT
    if result.reason in ("limit", "timeout"):
        print(f"vmm: {result.detail}", file=sys.stderr)
        return EXIT_LIMIT
    if result.reason == "halted":
        from vmm.cli.bootfail import boot_failed, describe_boot_failure

        if boot_failed(machine):
            print(f"vmm: {describe_boot_failure(machine)}", file=sys.stderr)
            return EXIT_NO_BOOT
        print(f"vmm: {result.detail} after {insns:,} instructions", file=sys.stderr)
        return 0
    if result.reason == "suspended":
        print(f"vmm: {result.detail} after {insns:,} instructions", file=sys.stderr)
        return 0
    if result.reason == "stopped" and result.detail:
        print(f"vmm: {result.detail} after {insns:,} instructions", file=sys.stderr)
        return 0
    if result.reason == "stopped":
        why = result.detail or "left (Ctrl-])"
        print(f"vmm: {why} after {insns:,} instructions, {ms:.3f} ms", file=sys.stderr)
        return 0
    print(f"vmm: emulation stopped: {result.detail}", file=sys.stderr)
    return EXIT_ERROR
