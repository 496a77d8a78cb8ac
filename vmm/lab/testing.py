"""A lab file under `vmm test`: a ``*.vmm.toml`` with ``[[vm]]`` tables runs as one test.

The lab's [[step]]s are its expectations (each addressed to a VM); the result line gives
the instructions of all VMs and the lab's virtual time; the lab's output (serial and pcap
files) goes to OUT/NAME/. A failing step is the test's failure message.
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

from vmm.errors import VmmError
from vmm.testing.runner import TestResult


def is_lab(path: Path | str) -> bool:
    """Whether an expectation file describes a lab ([[vm]] tables) rather than one machine."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(data.get("vm"), list)


def check_lab(path: Path | str) -> None:
    """Read the lab file (a ConfigError names what is wrong)."""
    from vmm.lab.spec import load_lab

    load_lab(path)


def run_lab_test(path: Path | str, out_dir: Path) -> TestResult:
    from vmm.lab.cli import StepFailed, run_steps
    from vmm.lab.engine import Lab
    from vmm.lab.spec import load_lab

    started = time.monotonic()
    try:
        spec = load_lab(path)
    except VmmError as exc:
        return TestResult(Path(path).name, str(path), "error", str(exc))
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in spec.name)
    outcome, message = "passed", ""
    try:
        lab = Lab(spec, out_dir / slug)
    except VmmError as exc:
        return TestResult(spec.name, str(path), "error", str(exc))
    try:
        try:
            if spec.steps:
                run_steps(lab)
            elif not lab.run():
                outcome, message = "failed", f"the lab's run time ({spec.run_ns / 1e9:g} s virtual) passed"
        except StepFailed as exc:
            outcome, message = "failed", str(exc)
        for vm in lab.vms:
            (out_dir / slug / f"{vm.name}.serial").write_bytes(bytes(vm.machine.serial_transcript))
            if vm.exit is not None and vm.exit.reason in ("error", "triple-fault") and outcome == "passed":
                outcome, message = "failed", f"{vm.name}: {vm.exit.reason}: {vm.exit.detail}"
        instructions = sum(vm.machine.cpu.instructions for vm in lab.vms)
        time_ns = lab.time_ns
    finally:
        lab.close()
    if message:
        message = f"{message} (the VMs' output is in {out_dir / slug}/)"
    return TestResult(spec.name, str(path), outcome, message, instructions, time_ns, time.monotonic() - started)
