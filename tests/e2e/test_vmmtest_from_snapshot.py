"""`vmm test` starts tests from a bundle's named snapshot (`[machine] bundle = …, snapshot =
NAME`): the toy OS is booted once, snapshotted at its prompt, and each test begins there —
the snapshot's RAM mapped copy-on-write, its disks under a throwaway delta (the bundle is
left as it was)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.snapshot_helpers import toyos_bundle
from vmm.bundle.config import read_bundle
from vmm.bundle.lock import VmLock
from vmm.machine import Machine
from vmm.snapshot.bundle import BundleSnapshots
from vmm.testing.spec import load_spec

TEST = """
name = "toyos from its snapshot: {what}"
[machine]
bundle = "vm/vm.vmx"
snapshot = "prompt"
[[step]]
send = "echo {what}\\r"
[[step]]
expect = '{what}\\r\\ntoyos\\$ '
within = "1s"
"""


def snapshot_at_prompt(tmp_path: Path) -> Path:
    vmx = toyos_bundle(tmp_path)
    machine = Machine(read_bundle(vmx).machine)
    with VmLock(vmx):
        while b"toyos$ " not in machine.serial_transcript:
            assert machine.run(max_instructions=1_000_000).reason not in ("exit-port", "triple-fault")
        BundleSnapshots(vmx, machine).take("prompt")
    machine.close()
    return vmx


def test_tests_start_from_a_bundle_snapshot(tmp_path: Path) -> None:
    vmx = snapshot_at_prompt(tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in vmx.parent.iterdir()}
    for what in ("first", "second", "third"):
        (tmp_path / f"{what}.vmm.toml").write_text(TEST.format(what=what))
    run = subprocess.run([sys.executable, "-m", "vmm", "test", str(tmp_path), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout
    assert {p.name: p.stat().st_mtime_ns for p in vmx.parent.iterdir()} == before  # the bundle is untouched
    assert load_spec(tmp_path / "first.vmm.toml").start.name.endswith(".vmsn")


def test_an_unknown_snapshot_or_a_missing_bundle_is_one_line(tmp_path: Path) -> None:
    toyos_bundle(tmp_path)
    (tmp_path / "bad.vmm.toml").write_text(TEST.format(what="x").replace('"prompt"', '"nosuch"'))
    (tmp_path / "lone.vmm.toml").write_text(TEST.format(what="y").replace('bundle = "vm/vm.vmx"\n', ""))
    run = subprocess.run([sys.executable, "-m", "vmm", "test", str(tmp_path), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 1
    assert "2 error" in run.stdout, run.stdout
    assert "snapshot = NAME needs bundle" in run.stdout + run.stderr
    assert "nosuch" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
