"""Suspend (`vmm ctl VM suspend`, SIGTERM with --suspend-on-sigterm) writes NAME.vmss +
NAME.vmem and exits; the next `vmm run` resumes there: the serial bytes before and after
add up to an uninterrupted run's, which ends at the same instruction."""

from __future__ import annotations

import re
import signal

import pytest

from tests.e2e.snapshot_helpers import RunningVm, toyos_bundle, vmm, wait_for
from vmm.bundle.config import read_bundle
from vmm.bundle.vmx import VmxFile
from vmm.machine import Machine

TOTAL = 9_000_000


@pytest.mark.parametrize("how", ["sigterm", "ctl"])
def test_suspend_then_resume_equals_an_uninterrupted_run(tmp_path, how):
    vmx = toyos_bundle(tmp_path)
    reference = Machine(read_bundle(vmx).machine)
    reference.run(max_instructions=TOTAL)
    expected, count = bytes(reference.serial_transcript), reference.instructions
    reference.close()

    flags = ["--suspend-on-sigterm"] if how == "sigterm" else []
    with RunningVm(vmx, *flags) as vm:
        wait_for(lambda: b"clock: uptime 10 s" in vm.output(), "the clock service", vm.proc)
        if how == "sigterm":
            vm.proc.send_signal(signal.SIGTERM)
        else:
            vmm("ctl", vmx, "suspend")
        code, err = vm.wait()
        before = vm.output()
    assert code == 0, err
    suspended_at = int(re.search(r"suspended to .*vm\.vmss after ([\d,]+) instructions", err)[1].replace(",", ""))
    assert suspended_at < TOTAL
    folder = vmx.parent
    assert VmxFile.load(vmx).get("checkpoint.vmState") == "vm.vmss"
    assert (folder / "vm.vmss").exists() and (folder / "vm.vmem").stat().st_size == 64 << 20
    assert (folder / "vm.vmem").stat().st_blocks * 512 < 64 << 20  # sparse
    assert vmm("snapshot", "check", vmx).returncode == 0
    assert "(suspended)" in vmm("snapshot", "list", vmx).stdout

    done = vmm("run", vmx, "--max-insns", TOTAL - suspended_at, "--serial", f"file:{tmp_path / 'after.txt'}",
               check=False)  # fmt: skip
    assert done.returncode == 124, done.stderr
    assert f"resumed at instruction {suspended_at:,}" in done.stderr
    assert f"at instruction {count:,} since power-on" in done.stderr
    assert before + (tmp_path / "after.txt").read_bytes() == expected
    assert VmxFile.load(vmx).get("checkpoint.vmState") is None
    assert not (folder / "vm.vmss").exists() and not (folder / "vm.vmem").exists()
