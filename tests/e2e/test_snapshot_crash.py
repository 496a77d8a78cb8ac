"""kill -9 during `vmm snapshot take|revert|delete`: 20 seeded moments (the N-th file
operation: pwrite, write, fsync, link, rename, replace, unlink, as tests/unit/disk/
test_disk_crash.py), after each the bundle passes `vmm snapshot check` and boots (or
resumes), and the same command run again succeeds."""

from __future__ import annotations

import random
import shutil

from tests.e2e.snapshot_helpers import RunningVm, toyos_bundle, vmm, wait_for
from tests.unit.disk.test_disk_crash import operations, vmm_killed_at

KILLS = 20
OPERATIONS = [("take", "new"), ("revert", "running"), ("delete", "running"), ("revert", "off"), ("delete", "off")]


def test_kill_9_during_snapshot_operations_leaves_a_valid_bundle(tmp_path):
    (tmp_path / "template").mkdir()
    template = toyos_bundle(tmp_path / "template")
    vmm("snapshot", "take", template, "off")
    with RunningVm(template, "--no-bios-serial") as vm:
        wait_for(lambda: b"clock: uptime 5 s" in vm.output(), "the clock service", vm.proc)
        vmm("snapshot", "take", template, "running")
        vmm("ctl", template, "quit")
        assert vm.wait()[0] == 0
    vmm("snapshot", "take", template, "after")  # the VM is on a delta over "running"'s disk

    rng = random.Random(18)
    plan = [OPERATIONS[n % len(OPERATIONS)] for n in range(KILLS)]
    counts = {}
    for action, name in OPERATIONS:
        work = tmp_path / f"count-{action}-{name}"
        shutil.copytree(template.parent, work)
        counts[(action, name)] = operations("snapshot", action, str(work / "vm.vmx"), name)
    for n, (action, name) in enumerate(plan):
        work = tmp_path / f"kill{n}"
        shutil.copytree(template.parent, work)
        vmx = work / "vm.vmx"
        moment = rng.randint(1, counts[(action, name)])
        killed = vmm_killed_at(moment, "snapshot", action, str(vmx), name)
        assert killed.returncode == -9, f"{action} {name} at {moment}: {killed.stderr}"
        check = vmm("snapshot", "check", vmx, check=False)
        assert check.returncode == 0, f"{action} {name} killed at op {moment}: {check.stdout}{check.stderr}"
        boot = vmm("run", vmx, "--max-insns", "1M", "--serial", "none", check=False)
        assert boot.returncode == 124, f"{action} {name} killed at op {moment}: {boot.stderr}"
        again = vmm("snapshot", action, vmx, name, check=False)
        assert again.returncode == 0 or "no snapshot named" in again.stderr, again.stderr
        assert vmm("snapshot", "check", vmx).returncode == 0
        shutil.rmtree(work)
