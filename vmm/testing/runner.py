"""Run one expectation file: boot, play its steps, compare with its golden run.

A golden run (``vmm test --record``) is ``NAME.vmm.golden.json`` beside the file: the
serial transcript, the instruction count when each byte was written, and the total
instruction count of a passing run. Later runs that pass their steps but differ from it
fail with the first differing byte and the instruction counts at which each run wrote
it. ``check_determinism`` runs a test twice and fails when bytes or counts differ.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from vmm.errors import VmmError
from vmm.fileio import atomic_write
from vmm.snapshot.statefile import save_machine_state
from vmm.testing.fanout import MachinePool, PathMap, same_path
from vmm.testing.report import printable, write_report
from vmm.testing.session import ExpectationFailed, GuestSession, describe_exit
from vmm.testing.spec import Step, TestSpec


@dataclass
class TestResult:
    name: str
    path: str
    outcome: str  # passed | failed | skipped | error
    message: str = ""
    instructions: int = 0
    time_ns: int = 0
    wall_s: float = 0.0
    report: str = ""  # report.txt's text, when one was written
    report_dir: str = ""
    worker: str = ""  # where it ran: "" in this process, "pid N" for --jobs, an address on a cluster
    retried_after: list[str] = field(default_factory=list)  # workers that died while running it
    serial: bytes = b""
    byte_insns: list[int] = field(default_factory=list)
    step_insns: list[int] = field(default_factory=list)

    def line(self) -> str:
        """The one line ``vmm test`` prints for this test."""
        head = f"{self.outcome.upper():<7} {self.name}"
        if self.outcome in ("skipped", "error"):
            return f"{head}: {self.message}"
        figures = (f"{self.instructions:>13,} insns  {self.time_ns / 1e6:10.3f} ms virtual  "
                   f"{self.wall_s:6.2f} s wall")  # fmt: skip
        tail = f"\n        {self.message}\n        report: {self.report_dir}/report.txt" if self.report_dir else ""
        if self.outcome == "failed" and not self.report_dir:
            tail = f"\n        {self.message}"
        return f"{head}  {figures}{tail}"


def run_step(session: GuestSession, step: Step, snapshot_dir: Path) -> None:
    kind, value, within = step.kind, step.value, step.within
    if kind == "expect":
        session.expect(value, within)
    elif kind == "send":
        try:
            session.send(value.encode("latin-1"))
        except UnicodeEncodeError:
            session.send(value.encode())
    elif kind == "send-keys":
        session.send_keys(*value)
    elif kind == "stage":
        session.wait_stage(value, within)
    elif kind == "stages":
        if session.stages != value:
            raise ExpectationFailed(f"stages {' → '.join(session.stages)}, expected {' → '.join(value)}")
    elif kind == "exit":
        ended = session.wait_exit(within)
        got_status = ended.reason == "exit-port" and ended.status == value
        if not (got_status or ended.reason == value):
            raise ExpectationFailed(f"the guest ended with {describe_exit(ended)}, expected {_exit_words(value)}")
    elif kind == "screen":
        session.wait_screen(value, within)
    elif kind == "serial_equals":
        compare_transcript(session.serial, Path(value), step.raw)
    elif kind == "run":
        session.run_for(within)
    elif kind == "snapshot":
        snapshot_dir.mkdir(parents=True, exist_ok=True)
        save_machine_state(session.machine, snapshot_dir / f"{value}.vmsn")


def _exit_words(value: object) -> str:
    return f"exit status {value}" if isinstance(value, int) else str(value)


def first_difference(a: bytes, b: bytes) -> int | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def compare_transcript(serial: bytes, expected_path: Path, raw: bool) -> None:
    try:
        expected = expected_path.read_bytes()
    except OSError as exc:
        raise ExpectationFailed(f"serial_equals: cannot read {expected_path}: {exc.strerror}") from None
    got = serial if raw else serial.replace(b"\r\n", b"\n")
    at = first_difference(got, expected)
    if at is None:
        return
    line = got[:at].count(b"\n") + 1
    raise ExpectationFailed(
        f"the serial output differs from {expected_path.name} at byte {at} (line {line}): "
        f"got {printable(got[at : at + 40])!r}, expected {printable(expected[at : at + 40])!r}"
    )


def open_session(spec: TestSpec, pool: MachinePool | None = None, remap: PathMap = same_path) -> GuestSession:
    """A session on a fresh machine, or (``[machine] start``) on one in the start state: from
    ``pool`` (reverted, when it holds one) or built from the state file."""
    if spec.start is None:
        return GuestSession(spec.machine_config(), wall_timeout=spec.timeout)
    pool = pool or MachinePool(fanout=False)
    machine, give_back = pool.checkout(spec.start, spec.machine.get("accel"), remap)
    return GuestSession(machine.config, wall_timeout=spec.timeout, machine=machine, release=give_back)


def run_spec(spec: TestSpec, out_dir: Path, record: bool = False, reports: bool = True,
             pool: MachinePool | None = None, remap: PathMap = same_path) -> TestResult:  # fmt: skip
    """Run ``spec`` on a fresh machine (or one from ``pool``); a report folder is written
    under ``out_dir`` on failure."""
    started = time.monotonic()
    result = TestResult(spec.name, str(spec.path), "passed")
    folder = out_dir / spec.slug
    try:
        session = open_session(spec, pool, remap)
    except VmmError as exc:
        result.outcome, result.message = "error", str(exc)
        return result
    try:
        for step in spec.steps:
            try:
                run_step(session, step, folder)
            except ExpectationFailed as exc:
                result.outcome, result.message = "failed", f"{step.describe()}: {exc}"
                if reports:
                    report = write_report(session, spec.name, step.describe(), str(exc), folder, spec.keep)
                    result.report, result.report_dir = report.text, str(folder)
                break
            result.step_insns.append(session.instructions)
        result.instructions, result.time_ns = session.instructions, session.time_ns
        result.serial, result.byte_insns = session.serial, list(session.byte_insns)
        if result.outcome == "passed":
            if record:
                write_golden(spec.golden_path, result)
            elif spec.golden_path.exists():
                divergence = compare_golden(spec.golden_path, result)
                if divergence:
                    result.outcome, result.message = "failed", divergence
                    if reports:
                        what = f"the golden run {spec.golden_path.name}"
                        report = write_report(session, spec.name, what, divergence, folder, spec.keep)
                        result.report, result.report_dir = report.text, str(folder)
    finally:
        session.close()
    result.wall_s = time.monotonic() - started
    return result


def write_golden(path: Path, result: TestResult) -> None:
    document = {"instructions": result.instructions, "serial": result.serial.decode("latin-1"),
                "byte_insns": result.byte_insns}  # fmt: skip
    atomic_write(path, (json.dumps(document, indent=0) + "\n").encode())


def compare_golden(path: Path, result: TestResult) -> str:
    """'' when ``result`` matches the golden run at ``path``, else what differs first."""
    try:
        golden = json.loads(path.read_text(encoding="utf-8"))
        serial = golden["serial"].encode("latin-1")
        byte_insns, instructions = list(golden["byte_insns"]), int(golden["instructions"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VmmError(f"{path}: not a golden run file ({exc}); record it again with vmm test --record") from None
    return describe_divergence("the golden run", serial, byte_insns, instructions, result)


def describe_divergence(other: str, serial: bytes, byte_insns: list[int], instructions: int,
                        result: TestResult) -> str:  # fmt: skip
    at = first_difference(serial, result.serial)
    if at is not None:

        def where(data: bytes, insns: list[int]) -> str:
            if at >= len(data):
                return "nothing (its output ends there)"
            return f"{printable(data[at : at + 20])!r} at instruction {insns[at]:,}" if at < len(insns) else "?"

        line = serial[:at].count(b"\n") + 1
        return (f"serial output diverges from {other} at byte {at} (line {line}): {other} wrote "
                f"{where(serial, byte_insns)}, this run {where(result.serial, result.byte_insns)}")  # fmt: skip
    for i, (a, b) in enumerate(zip(byte_insns, result.byte_insns, strict=False)):
        if a != b:
            return (f"same serial bytes, but byte {i} was written at instruction {b:,} in this run "
                    f"and {a:,} in {other}")  # fmt: skip
    if instructions != result.instructions:
        ours = f"{result.instructions:,} instructions in this run"
        return f"same serial bytes, but {ours} and {instructions:,} in {other}"
    return ""


def check_determinism(spec: TestSpec, out_dir: Path, pool: MachinePool | None = None,
                      remap: PathMap = same_path) -> TestResult:  # fmt: skip
    """Run ``spec`` twice; fail when the runs differ in serial bytes or instruction counts."""
    first = run_spec(spec, out_dir, pool=pool, remap=remap)
    if first.outcome in ("error", "skipped"):
        return first
    second = run_spec(spec, out_dir, reports=False, pool=pool, remap=remap)
    divergence = describe_divergence("the first run", first.serial, first.byte_insns, first.instructions, second)
    if not divergence and first.step_insns != second.step_insns:
        divergence = f"steps ended at instructions {second.step_insns} in one run, {first.step_insns} in the other"
    if divergence:
        first.outcome, first.message = "failed", f"not deterministic: {divergence}"
    first.wall_s += second.wall_s
    return first
