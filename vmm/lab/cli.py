"""`vmm lab LAB.toml`: run a lab (vmm.lab.engine), check its steps, write what it saw.

Writes OUT/VM.serial for every VM, OUT/SWITCH-portN-VM.pcap for every switch port and
OUT/VM-ethernetN.pcap for each NIC marked ``pcap = true`` (all timestamps virtual), and
prints one line per VM (how it ended, instructions, virtual time) and per switch port.
Exit status: with [[step]]s, 0 when every step passed; without, 0 when every VM ended by
writing 0 to the exit port (status 1, as `vmm run`'s) or halting. 1 when a step failed or
a VM ended otherwise, 124 when the lab's ``run`` time passed first, 2 for a bad file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import regex

EXIT_FAILED, EXIT_LIMIT = 1, 124


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("lab", metavar="LAB.toml", help="the lab: [[switch]]es, [[vm]]s with their NICs, [[step]]s")
    p.add_argument("--out", metavar="DIR", type=Path,
                   help="write each VM's serial output and the pcap files here (default: LAB.out/)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="print only failures")
    p.set_defaults(func=cmd_lab)


class StepFailed(Exception):
    pass


def run_steps(lab, progress=None) -> None:
    """Run the lab through its [[step]]s (StepFailed names the first that fails)."""
    cursors = {vm.name: 0 for vm in lab.vms}
    for index, step in enumerate(lab.spec.steps, 1):
        what = f"step #{index} ({step.vm}: {step.kind} {step.value!r})"
        if progress:
            progress(what)
        run_step(lab, step, cursors, what)


def run_step(lab, step, cursors: dict[str, int], what: str) -> None:
    vm = lab.vm(step.vm)
    if step.kind == "send":
        vm.machine.send(step.value.encode())  # as `vmm test`: the TOML string, byte for byte
        return
    start_insns = vm.machine.cpu.instructions
    end_ns = lab.spec.run_ns if step.within.time_ns is None else min(lab.spec.run_ns, lab.time_ns + step.within.time_ns)

    def over_budget() -> bool:
        limit = step.within.instructions
        return limit is not None and vm.machine.cpu.instructions - start_insns >= limit

    if step.kind == "expect":
        pattern = regex.compile(step.value.encode())
        found: list = []

        def matched() -> bool:
            m = pattern.search(bytes(vm.machine.serial_transcript), cursors[vm.name])
            if m:
                found.append(m)
            return bool(m) or over_budget() or vm.exit is not None

        lab.run(until=matched, end_ns=end_ns)
        if not found:
            why = f"{vm.name} ended ({vm.exit.reason})" if vm.exit else f"not within {step.within.describe()}"
            raise StepFailed(f"{what}: {why}")
        cursors[vm.name] = found[0].end()
        return
    lab.run(until=lambda: vm.exit is not None or over_budget(), end_ns=end_ns)
    if vm.exit is None:
        raise StepFailed(f"{what}: still running after {step.within.describe()}")
    if vm.exit.reason != "exit-port" or vm.exit.status != step.value:
        raise StepFailed(f"{what}: ended with {vm.exit.reason} {vm.exit.status} {vm.exit.detail}".rstrip())


def cmd_lab(args: argparse.Namespace) -> int:
    from vmm.lab.engine import Lab
    from vmm.lab.spec import load_lab

    spec = load_lab(args.lab)
    out = args.out or Path(args.lab).with_suffix(".out")
    say = (lambda line: None) if args.quiet else (lambda line: print(f"vmm lab: {line}", file=sys.stderr, flush=True))
    say(f"{spec.name}: {len(spec.vms)} VMs, {len(spec.switches)} switches, slice {spec.slice_ns / 1e6:g} ms; "
        f"output in {out}/")  # fmt: skip
    lab = Lab(spec, out)
    status = 0
    try:
        try:
            run_steps(lab, say)
            if not spec.steps:
                finished = lab.run()
                if not finished:
                    print(f"vmm lab: the lab's run time ({spec.run_ns / 1e9:g} s virtual) passed", file=sys.stderr)
                    status = EXIT_LIMIT
        except StepFailed as exc:
            print(f"vmm lab: FAILED {exc}", file=sys.stderr)
            status = EXIT_FAILED
        for vm in lab.vms:
            (out / f"{vm.name}.serial").write_bytes(bytes(vm.machine.serial_transcript))
            ended = "running" if vm.exit is None else f"{vm.exit.reason} {vm.exit.status}"
            if vm.exit is not None and vm.exit.reason in ("error", "triple-fault"):
                print(f"vmm lab: {vm.name}: {vm.exit.reason}: {vm.exit.detail}", file=sys.stderr)
                status = status or EXIT_FAILED
            say(f"vm {vm.name}: {ended}, {vm.machine.cpu.instructions:,} instructions, "
                f"{vm.machine.clock.now_ns() / 1e6:.3f} ms")  # fmt: skip
        for name, switch in lab.switches.items():
            for port in switch.ports.values():
                c = port.counters
                say(f"switch {name} port {port.number} {port.name}: rx {c.get('rx_frames', 0)}, "
                    f"tx {c.get('tx_frames', 0)} frames")  # fmt: skip
            if switch.counters:
                say(f"switch {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(switch.counters.items())))
        say(f"lab time {lab.time_ns / 1e6:.3f} ms; {'passed' if status == 0 else 'status ' + str(status)}")
    finally:
        lab.close()
    if status == 0 and not spec.steps:
        clean = all(vm.exit is not None and (vm.exit.reason, vm.exit.status) in (("exit-port", 1), ("halted", 0))
                    for vm in lab.vms)  # fmt: skip
        status = 0 if clean else EXIT_FAILED
    return status
