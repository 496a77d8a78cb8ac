"""Failure reports of broken images: each part a person needs is there, and the kept
state opens with load_machine_state and continues exactly as the original would."""

from __future__ import annotations

from pathlib import Path

from tests.unit.testing.conftest import write_spec
from vmm.testing import GuestSession, load_machine_state, load_spec
from vmm.testing.runner import run_spec
from vmm.testing.spec import Budget


def test_boot_sector_without_signature_gives_a_full_report(unsigned_image: Path, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        "unsigned",
        f"""
        [machine]
        image = "{unsigned_image}"
        [[step]]
        expect = 'Booting from hard disk'
        within = "1M"
        [[step]]
        expect = 'kernel panic'
        within = "5M"
    """,
    )
    result = run_spec(load_spec(spec), tmp_path / "out")
    assert result.outcome == "failed"
    assert "step 2" in result.message and "before the guest ended (halted" in result.message
    report = (tmp_path / "out" / "test_unsigned" / "report.txt").read_text()
    assert report == result.report
    transcript = report.split("== serial transcript")[1].split("== stage timeline")[0]
    assert transcript.index("Booting from hard disk") < transcript.index("step 2 searched from here")
    assert transcript.index("searched from here") < transcript.index("No bootable disk")
    assert transcript.index("No bootable disk") < transcript.index("step 2 failed here, at instruction")
    assert "stage firmware   at insn            0" in report and "stage bootloader" not in report
    assert "the guest ended: halted: CPU halted with interrupts disabled" in report
    assert "rip=" in report and "cs=f000" in report and "mode=real" in report
    assert "== VGA screen ==\nvmm BIOS" in report and "No bootable disk" in report.split("== VGA screen ==")[1]
    assert "hlt" in report.split("== last")[1]  # the BIOS stops with HLT: the replay saw it
    files = tmp_path / "out" / "test_unsigned"
    assert (files / "screen.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (files / "serial.bin").read_bytes() == result.serial
    machine = load_machine_state(files / "state.vmsn")
    try:
        assert machine.cpu.instructions == result.instructions
        assert machine.stages.current == "firmware"
        assert machine.serial_transcript.endswith(b"No bootable disk\r\n")
    finally:
        machine.close()


def test_a_panicking_kernel_report_lists_its_last_instructions(panic_image: Path, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        "panic",
        f"""
        [machine]
        image = "{panic_image}"
        [keep]
        trace = 8
        [[step]]
        expect = 'login: '
        within = "2M"
    """,
    )
    result = run_spec(load_spec(spec), tmp_path / "out")
    assert result.outcome == "failed"
    report = result.report
    assert "kernel panic: no init found\n\n-------- vmm test: step 1 failed here" in report
    assert "stage bootloader at insn" in report
    last = report.split("== last 8 instructions executed (replayed from power-on) ==\n")[1].split("\n\n")[0]
    assert last.splitlines()[-1].split()[-1] == "hlt"
    assert "out dx, al" in last and "0x0000000000007c13  fa" in last
    assert "pc=0x7c15" in report


def test_kept_state_continues_exactly_as_the_original_run(toyos: Path, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        "toyos",
        f"""
        [machine]
        image = "{toyos}"
        [[step]]
        expect = 'toyos\\$ '
        within = "50M"
        [[step]]
        expect = 'this never appears'
        within = "200k"
    """,
    )
    result = run_spec(load_spec(spec), tmp_path / "out")
    assert result.outcome == "failed"
    restored = load_machine_state(tmp_path / "out" / "test_toyos" / "state.vmsn")
    original = GuestSession(load_spec(spec).machine_config())
    try:
        original.expect(r"toyos\$ ", Budget(instructions=50_000_000))
        original.run_for(Budget(instructions=200_000))
        assert original.instructions == restored.cpu.instructions == result.instructions
        assert original.serial == bytes(restored.serial_transcript)
        for machine in (original.machine, restored):
            machine.send(b"echo after the state\rpoweroff\r")
        ended = original.machine.run(max_instructions=5_000_000), restored.run(max_instructions=5_000_000)
        assert ended[0] == ended[1] and ended[0].reason == "exit-port" and ended[0].status == 1
        assert original.machine.serial_transcript == restored.serial_transcript
        assert b"after the state\r\n" in restored.serial_transcript
        assert original.instructions == restored.cpu.instructions
    finally:
        original.close()
        restored.close()
