"""Snapshots of a bundle (vmm/snapshot/): the toy OS's clock service taken, run, reverted and
run again gives the same serial bytes and instruction counts; branches in `vmm snapshot
list`; VMware's file set with `qemu-img check` clean deltas; delete; check; starting VMs
from a snapshot; the Python API."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.e2e.snapshot_helpers import RunningVm, toyos_bundle, vmm, wait_for
from vmm.bundle.config import read_bundle
from vmm.bundle.lock import VmLock
from vmm.machine import Machine
from vmm.snapshot.bundle import BundleSnapshots
from vmm.snapshot.vmsd import read_tree

BOOT = 6_000_000  # the toy OS is at its shell, the clock service printing
RUN = 3_000_000  # a little more than 20 s of guest uptime: several clock lines


def qemu_img_check(path: Path) -> None:
    qemu_img = require_tool("qemu-img")
    done = subprocess.run([qemu_img, "check", "-f", "vmdk", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def qemu_img_info(path: Path) -> dict:
    import json

    qemu_img = require_tool("qemu-img")
    done = subprocess.run([qemu_img, "info", "--output=json", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_take_run_revert_run_gives_the_same_bytes_and_counts(tmp_path):
    vmx = toyos_bundle(tmp_path)
    machine = Machine(read_bundle(vmx).machine)
    with VmLock(vmx):
        machine.run(max_instructions=BOOT)
        snaps = BundleSnapshots(vmx, machine)
        snaps.take("clock")
        mark = len(machine.serial_transcript)
        machine.run(max_instructions=RUN)
        first, count = bytes(machine.serial_transcript[mark:]), machine.instructions
        assert b"clock: uptime" in first
        for _ in range(2):
            snaps.revert("clock")
            machine.run(max_instructions=RUN)
            assert bytes(machine.serial_transcript[mark:]) == first
            assert machine.instructions == count
        # A run straight from power-on to the same count prints the same.
        machine.close()
    fresh = Machine(read_bundle(vmx).machine)
    fresh.run(max_instructions=count)
    assert fresh.instructions == count and bytes(fresh.serial_transcript[mark:]) == first
    fresh.close()


def test_vmware_file_set_branches_and_list(tmp_path):
    vmx = toyos_bundle(tmp_path)
    folder = vmx.parent
    vmm("snapshot", "take", vmx, "installed")  # powered off
    with RunningVm(vmx, "--no-bios-serial") as vm:
        wait_for(lambda: b"clock: uptime 5 s" in vm.output(), "the clock service", vm.proc)
        out = vmm("snapshot", "take", vmx, "booted").stdout
        assert "running VM" in out
        vmm("snapshot", "take", vmx, "later")
        vmm("snapshot", "revert", vmx, "booted")
        vmm("snapshot", "take", vmx, "branch")  # a second child of "booted"
        vmm("ctl", vmx, "quit")
        assert vm.wait()[0] == 0
    tree = read_tree(folder / "vm.vmsd")
    names = {s.uid: s.display_name for s in tree.snapshots}
    parents = {s.display_name: names.get(s.parent) for s in tree.snapshots}
    assert parents == {"installed": None, "booted": "installed", "later": "booted", "branch": "booted"}
    assert names[tree.current] == "branch"
    listing = vmm("snapshot", "list", vmx).stdout.splitlines()
    assert listing[0].startswith("installed  #1")
    assert [line.split("  #")[0] for line in listing[1:]] == [
        "└── booted", "    ├── later", "    └── branch", "        └── You are here"
    ]  # fmt: skip
    # VMware's files and keys.
    vmsd = (folder / "vm.vmsd").read_text()
    keys = [
        'snapshot.numSnapshots = "4"', 'snapshot.current = "4"', "snapshot1.disk0.fileName",
        'snapshot1.disk0.node = "ide0:0"', 'snapshot1.parent = "1"', 'snapshot0.filename = "vm-Snapshot1.vmsn"',
    ]  # fmt: skip
    for key in keys:
        assert key in vmsd
    for n in (1, 2, 3, 4):
        assert (folder / f"vm-Snapshot{n}.vmsn").read_bytes()[:4] == bytes.fromhex("d2bed2be")
    for n in (2, 3, 4):
        vmem = folder / f"vm-Snapshot{n}.vmem"
        assert vmem.stat().st_size == 64 << 20
    assert not (folder / "vm-Snapshot1.vmem").exists()  # taken powered off: no memory
    deltas = sorted(folder.glob("vm-0*.vmdk"))
    assert len(deltas) == 4  # one frozen per snapshot after the first, and the running one
    for delta in deltas:
        qemu_img_check(delta)
        info = qemu_img_info(delta)
        # the chain: each delta's parent CID is its parent's CID
        backing = folder / info["backing-filename"]
        assert f"{qemu_img_info(backing)['format-specific']['data']['cid']:x}" == (
            f"{info['format-specific']['data']['parent-cid']:x}"
        )
    assert vmm("snapshot", "check", vmx).returncode == 0


def test_delete_reparents_and_removes_files(tmp_path):
    vmx = toyos_bundle(tmp_path)
    folder = vmx.parent
    vmm("snapshot", "take", vmx, "a")
    vmm("snapshot", "take", vmx, "b")
    vmm("snapshot", "take", vmx, "c")
    vmm("snapshot", "delete", vmx, "b")
    tree = read_tree(folder / "vm.vmsd")
    assert [(s.display_name, s.parent) for s in tree.snapshots] == [("a", None), ("c", 1)]
    assert not (folder / "vm-Snapshot2.vmsn").exists()
    vmm("snapshot", "revert", vmx, "a")
    vmm("snapshot", "delete", vmx, "c")
    assert vmm("snapshot", "list", vmx).stdout.splitlines()[1:] == ["└── You are here"]
    assert vmm("snapshot", "check", vmx).stdout.count("consistent") == 1
    # The disks nothing needs any more are gone: the base, one delta frozen at "a" ... and the running one.
    assert len(list(folder.glob("vm-0*.vmdk"))) == 1
    missing = vmm("snapshot", "revert", vmx, "nope", check=False)
    assert missing.returncode == 2 and "no snapshot named 'nope'" in missing.stderr
    done = vmm("run", vmx, "--max-insns", "2M", check=False)
    assert done.returncode == 124, done.stderr


def test_check_finds_damage(tmp_path):
    vmx = toyos_bundle(tmp_path)
    vmm("snapshot", "take", vmx, "a")
    vmm("snapshot", "take", vmx, "b")
    folder = vmx.parent
    (folder / "vm-Snapshot2.vmsn").write_bytes(b"garbage")
    (folder / "vm-000001.vmdk").unlink()
    done = vmm("snapshot", "check", vmx, check=False)
    assert done.returncode == 3
    assert "not a checkpoint file" in done.stderr and "vm-000001.vmdk" in done.stderr


def test_run_from_snapshot_leaves_the_bundle_alone(tmp_path):
    vmx = toyos_bundle(tmp_path)
    with RunningVm(vmx, "--no-bios-serial") as vm:
        wait_for(lambda: b"clock: uptime 5 s" in vm.output(), "the clock service", vm.proc)
        vmm("snapshot", "take", vmx, "booted")
        vmm("ctl", vmx, "quit")
        vm.wait()
    before = {p.name: p.stat().st_mtime_ns for p in vmx.parent.iterdir()}
    outs = []
    for _ in range(2):
        done = vmm("run", vmx, "--from-snapshot", "booted", "--max-insns", RUN, "--serial", "stdio",
                   "--no-bios-serial", check=False, stdin=subprocess.DEVNULL)  # fmt: skip
        assert done.returncode == 124, done.stderr
        outs.append(done.stdout)
    assert outs[0] == outs[1] and "clock: uptime" in outs[0]
    assert {p.name: p.stat().st_mtime_ns for p in vmx.parent.iterdir()} == before


def test_python_api_take_revert_load(tmp_path):
    vmx = toyos_bundle(tmp_path)
    config = read_bundle(vmx).machine
    config.scratch_disks = True
    machine = Machine(config)
    machine.run(max_instructions=BOOT)
    snap = machine.take_snapshot(tmp_path / "booted.vmsn")
    mark = len(machine.serial_transcript)
    machine.run(max_instructions=RUN)
    first, count = bytes(machine.serial_transcript[mark:]), machine.instructions
    machine.revert_snapshot(snap)
    machine.run(max_instructions=RUN)
    assert (bytes(machine.serial_transcript[mark:]), machine.instructions) == (first, count)
    other = Machine.from_snapshot(tmp_path / "booted.vmsn")
    other.run(max_instructions=RUN)
    assert (bytes(other.serial_transcript[mark:]), other.instructions) == (first, count)
    assert machine.memory.backing == str(tmp_path / "booted.vmem")
    with pytest.raises(Exception, match="written through"):
        Machine(read_bundle(vmx).machine).take_snapshot(tmp_path / "x.vmsn")
    other.close()
    machine.close()
