"""``vmm run --check-determinism``: the same machine run twice, once in one ``run()`` and once
in many small slices of random size, must do the same thing at the same instruction.

Each run records every port access (the instruction count, the pc, direction, port, size
and value: what the guest's devices saw, serial output included) and ends with its
instruction count, pc, exit and a hash of RAM. The first event that differs between the
two is reported: a timer that fires at a slice boundary instead of its deadline, an
instruction that reads the host, or a device whose state depends on how the host ran it
all show up there, at the instruction where they first matter.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from vmm.config import MachineConfig

DEFAULT_MAX_SLICE = 50_000  # instructions: random slices are 1..this long


@dataclass
class Trace:
    """What one run did, event by event, and how it ended."""

    # (instructions, pc, in|out, port, size, value) of every port access
    events: list[tuple[int, int, str, int, int, int]] = field(default_factory=list)
    instructions: int = 0
    pc: int = 0
    exit: str = ""
    serial: bytes = b""
    ram_sha256: str = ""
    slices: int = 0


@dataclass
class Verdict:
    same: bool
    one: Trace
    many: Trace
    seed: int
    divergence: str = ""  # the first difference, for people


def describe_event(event: tuple[int, int, str, int, int, int]) -> str:
    insns, pc, kind, port, size, value = event
    return f"{kind} port {port:#x} size {size} value {value:#x} at instruction {insns:,} (pc {pc:#x})"


def record(config: MachineConfig, make_machine: Callable, limit: int | None,
           slices: random.Random | None, max_slice: int) -> Trace:  # fmt: skip
    """Run a fresh machine up to ``limit`` instructions (or until the guest ends), in one
    run() or in random slices, recording every port access."""
    trace = Trace()
    machine = make_machine(config)
    cpu = machine.cpu

    def on_io(kind: str, port: int, size: int, value: int) -> None:
        trace.events.append((cpu.instructions, cpu.linear_pc(), kind, port, size, value))

    machine.observe_io(on_io)
    result = None
    try:
        while True:
            left = None if limit is None else limit - cpu.instructions
            if left is not None and left <= 0:
                break
            step = left if slices is None else slices.randint(1, max_slice)
            if left is not None:
                step = min(step, left)
            result = machine.run(max_instructions=step)
            trace.slices += 1
            if result.reason != "limit":
                break
        trace.instructions = cpu.instructions
        trace.pc = cpu.get_state().pc
        reason = "limit" if result is None else result.reason
        trace.exit = f"exit-port {result.status}" if reason == "exit-port" else reason
        trace.serial = bytes(machine.serial_transcript)
        trace.ram_sha256 = hashlib.sha256(machine.memory.read(0, machine.memory.size)).hexdigest()
    finally:
        machine.close()
    return trace


def compare(one: Trace, many: Trace) -> str:
    """The first difference between two traces, or "" when they agree."""
    for n, (a, b) in enumerate(zip(one.events, many.events, strict=False)):
        if a != b:
            return (f"port event #{n + 1} differs: in one slice {describe_event(a)}; "
                    f"in random slices {describe_event(b)}")  # fmt: skip
    if len(one.events) != len(many.events):
        longer, name = (one, "one slice") if len(one.events) > len(many.events) else (many, "random slices")
        extra = longer.events[min(len(one.events), len(many.events))]
        return f"only the run in {name} went on to port event #{min(len(one.events), len(many.events)) + 1}: " + \
            describe_event(extra)  # fmt: skip
    for what, a, b in [("instruction count", one.instructions, many.instructions), ("pc", one.pc, many.pc),
                       ("exit", one.exit, many.exit)]:  # fmt: skip
        if a != b:
            return f"the runs ended differently: {what} {a} in one slice, {b} in random slices"
    if one.serial != many.serial:
        return "the serial output differs (with the same port events: a device wrote it differently)"
    if one.ram_sha256 != many.ram_sha256:
        return f"RAM differs at the end (instruction {one.instructions:,}, pc {one.pc:#x})"
    return ""


def check(config: MachineConfig, make_machine: Callable, limit: int | None, seed: int = 0,
          max_slice: int = DEFAULT_MAX_SLICE) -> Verdict:  # fmt: skip
    """Run ``config`` in one slice, then again (to the same instruction) in random slices
    (``config.scratch_disks`` keeps the guest's disk writes of one run from the other)."""
    one = record(config, make_machine, limit, None, max_slice)
    many = record(config, make_machine, one.instructions, random.Random(seed), max_slice)
    divergence = compare(one, many)
    return Verdict(not divergence, one, many, seed, divergence)


def report(config: MachineConfig, make_machine: Callable, limit: int | None, seed: int) -> int:
    """The CLI's check: progress and the verdict on stderr; 0 if the runs agree, else 1."""
    import sys

    config.serial.kind = "none"  # nobody types: the guest's input is part of the machine
    config.scratch_disks = True  # both runs start from the same disk contents

    def say(text: str) -> None:
        print(f"vmm: {text}", file=sys.stderr, flush=True)

    say("determinism check: first run, in one slice" + (f" of {limit:,} instructions" if limit else ""))
    one = record(config, make_machine, limit, None, DEFAULT_MAX_SLICE)
    say(f"first run: {one.instructions:,} instructions, {len(one.events):,} port events, ended: {one.exit}")
    say(f"second run: to the same instruction in random slices of 1-{DEFAULT_MAX_SLICE:,} (seed {seed})")
    many = record(config, make_machine, one.instructions, random.Random(seed), DEFAULT_MAX_SLICE)
    divergence = compare(one, many)
    if divergence:
        say(f"not deterministic: {divergence}")
        return 1
    say(f"deterministic: {many.slices:,} slices ran the same {one.instructions:,} instructions: "
        f"{len(one.events):,} port events, {len(one.serial):,} serial bytes, final pc {one.pc:#x} "
        f"and RAM (sha256 {one.ram_sha256[:16]}) identical")  # fmt: skip
    return 0
