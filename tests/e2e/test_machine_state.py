"""Whole-machine state (DESIGN.md principle 4): a machine restored from save_state()
continues exactly as the original did: the same serial bytes at the same instruction
counts, through timer interrupts, disk reads and serial input."""

from __future__ import annotations

import hashlib

from tests.conftest import ROOT, require_file
from vmm.config import DiskConfig, MachineConfig, SerialConfig
from vmm.machine import Machine


def toyos() -> Machine:
    image = require_file(ROOT / "guests" / "build" / "toyos.img")
    return Machine(MachineConfig(disks=[DiskConfig("ide0:0", image)], serial=SerialConfig("none")))


def run_to(machine: Machine, marker: bytes) -> None:
    while marker not in machine.serial_transcript:
        assert machine.cpu.instructions < 100_000_000, bytes(machine.serial_transcript[-500:])
        machine.run(max_instructions=100_000)


def continue_session(machine: Machine) -> tuple[bytes, int, str]:
    start = len(machine.serial_transcript)
    machine.send("ls\r")
    machine.run(max_instructions=3_000_000)  # timer ticks, a disk read of the directory, output
    ram = hashlib.sha256(machine.memory.read(0, machine.memory.size)).hexdigest()
    return bytes(machine.serial_transcript[start:]), machine.cpu.instructions, ram


def test_restored_machine_replays_identically():
    machine = toyos()
    try:
        run_to(machine, b"toyos$ ")
        state = machine.save_state()
        first = continue_session(machine)
        machine.load_state(state)
        second = continue_session(machine)
    finally:
        machine.close()
    assert b"/etc/motd" in first[0]
    assert first == second


def test_state_moves_into_a_fresh_machine():
    source = toyos()
    try:
        run_to(source, b"toyos$ ")
        state = source.save_state()
        expected = continue_session(source)
    finally:
        source.close()
    target = toyos()
    try:
        target.load_state(state)
        assert continue_session(target) == expected
    finally:
        target.close()
