"""Failure reports a person can act on.

When a step fails, its folder gets::

    report.txt   what was expected and what happened; the serial transcript with markers
                 at the last match and at the point of failure; the stage timeline; the
                 registers; the last instructions executed (see vmm.testing.replay); the
                 VGA screen as text; the files below
    serial.bin   the transcript, byte for byte
    screen.txt   the VGA text screen          screen.png   the same, rendered
    state.vmsn   the machine at the failure (+ state.vmem): vmm.testing.load_machine_state
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vmm.cpu.faults import describe_fault
from vmm.cpu.state import GPR_NAMES, SEGMENT_NAMES, X86State
from vmm.fileio import atomic_write
from vmm.snapshot.statefile import save_machine_state
from vmm.testing.replay import disassemble, replay_tail
from vmm.testing.session import GuestSession, describe_exit
from vmm.testing.spec import Keep

MARK_SEARCH = "\n-------- vmm test: {what} searched from here --------\n"
MARK_FAIL = "\n-------- vmm test: {what} failed here, at instruction {insns:,} --------\n"
TRANSCRIPT_TAIL = 16 * 1024  # characters of transcript shown in report.txt (serial.bin has all)


@dataclass
class FailureReport:
    folder: Path
    text: str

    @property
    def path(self) -> Path:
        return self.folder / "report.txt"


def printable(data: bytes) -> str:
    """Serial bytes as text: CR LF read as LF, other control bytes as \\xNN."""
    text = data.decode("latin-1").replace("\r\n", "\n")
    return "".join(c if c in "\n\t" or 0x20 <= ord(c) < 0x7F or ord(c) >= 0xA0 else f"\\x{ord(c):02x}" for c in text)


def transcript_with_markers(serial: bytes, mark: int, what: str, insns: int) -> str:
    before = printable(serial[:mark])
    after = printable(serial[mark:])
    text = before + MARK_SEARCH.format(what=what) + after + MARK_FAIL.format(what=what, insns=insns)
    if len(text) > TRANSCRIPT_TAIL:
        text = f"[... {len(text) - TRANSCRIPT_TAIL:,} earlier characters in serial.bin ...]\n" + text[-TRANSCRIPT_TAIL:]
    return text


def registers(state: X86State) -> list[str]:
    gprs = [f"{name}={state.gprs[name]:016x}" for name in GPR_NAMES]
    lines = ["  " + "  ".join(gprs[i : i + 4]) for i in range(0, len(gprs), 4)]
    lines.append(f"  rip={state.rip:016x}  rflags={state.rflags:08x}  pc={state.pc:#x}  "
                 f"mode={state.mode} ({state.code_bits}-bit code)  cpl={state.cpl}  halted={state.halted}")  # fmt: skip
    lines.append(f"  cr0={state.cr0:08x}  cr2={state.cr2:016x}  cr3={state.cr3:016x}  "
                 f"cr4={state.cr4:08x}  efer={state.efer:x}")  # fmt: skip
    segs = [f"{n}={s.selector:04x} (base {s.base:#x} limit {s.limit:#x} attrs {s.attrs:#06x})"
            for n, s in ((n, state.segments[n]) for n in SEGMENT_NAMES)]  # fmt: skip
    lines += ["  " + seg for seg in segs]
    lines.append(f"  gdt={state.gdt.base:#x}/{state.gdt.limit:#x}  idt={state.idt.base:#x}/{state.idt.limit:#x}")
    return lines


def write_report(session: GuestSession, test_name: str, step: str, message: str, folder: Path,
                 keep: Keep) -> FailureReport:  # fmt: skip
    """Collect everything about ``session`` as it is now into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    machine = session.machine
    state = machine.cpu.get_state()
    serial = session.serial
    lines = [
        f"FAIL {test_name}",
        f"{step}",
        f"  {message}",
        f"at instruction {session.instructions:,}, {session.time_ns / 1e6:.3f} ms of virtual time, "
        f"stage {session.stage}" + (f"; the guest ended: {describe_exit(session.ended)}" if session.ended else ""),
        "",
        f"== serial transcript ({len(serial):,} bytes) ==",
        transcript_with_markers(serial, session.mark, step.split(":")[0], session.instructions),
        "== stage timeline ==",
        *(f"  {t.describe()}" for t in machine.stages.timeline),
        "",
        "== registers ==",
        *registers(state),
        "",
    ]
    if session.ended and session.ended.fault_chain:
        lines.append("== faults that led to the triple fault (vector, error, pc, what) ==")
        lines += [f"  {v:#x} {'-' if e is None else hex(e)} {pc:#x} {describe_fault(v, e, pc, soft).split(' at pc')[0]}"
                  for v, e, pc, soft in session.ended.fault_chain]  # fmt: skip
        lines.append("")
    if keep.trace:
        replay = replay_tail(session, keep.trace)
        lines.append(f"== last {len(replay.pcs)} instructions executed (replayed from power-on) ==")
        lines += disassemble(machine, state, replay.pcs) if replay.pcs else [f"  ({replay.note})"]
        lines.append("")
    lines.append(f"== next instruction, at pc {state.pc:#x} ==")
    lines += disassemble(machine, state, [state.pc])
    lines.append("")
    screen = machine.screen_text()
    lines += ["== VGA screen ==", screen.rstrip("\n"), ""]
    files = ["serial.bin", "screen.txt"]
    atomic_write(folder / "serial.bin", serial)
    atomic_write(folder / "screen.txt", screen.encode())
    if keep.screenshot:
        machine.vga.screenshot_png(folder / "screen.png")
        files.append("screen.png")
    if keep.state:
        save_machine_state(machine, folder / "state.vmsn")
        files += ["state.vmsn", "state.vmem (open with vmm.testing.load_machine_state)"]
    lines += ["== files ==", *(f"  {folder / name}" for name in files), ""]
    text = "\n".join(lines)
    atomic_write(folder / "report.txt", text.encode())
    return FailureReport(folder, text)
