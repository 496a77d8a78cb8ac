"""One monitor per VM: the lock is refused while held, and recovered after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vmm.bundle.lock import VmLock, VmLockedError

ROOT = Path(__file__).resolve().parents[3]

HOLDER = """
import sys
from vmm.bundle.lock import VmLock
lock = VmLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
sys.stdin.read()  # hold until killed or stdin closes
"""


def start_holder(vmx: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(vmx)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "locked\n"
    return proc


def test_second_monitor_is_refused_then_succeeds_after_sigkill(tmp_path: Path) -> None:
    vmx = tmp_path / "vm.vmx"
    vmx.write_text('.encoding = "UTF-8"\n')
    holder = start_holder(vmx)
    try:
        with pytest.raises(VmLockedError, match=rf"^vm.vmx is in use by vmm process {holder.pid} \(since "):
            VmLock(vmx).acquire()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert (tmp_path / "vm.vmx.lck").is_dir()  # the dead holder left its lock behind
    with VmLock(vmx) as lock:
        assert lock.held
        members = list((tmp_path / "vm.vmx.lck").iterdir())
        assert len(members) == 1 and members[0].name.startswith("M")
        assert f" {os.getpid()} 1 X vmm " in members[0].read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vm.vmx"]


def test_a_zombie_holder_counts_as_dead(tmp_path: Path) -> None:
    vmx = tmp_path / "vm.vmx"
    vmx.write_text("")
    holder = start_holder(vmx)
    os.kill(holder.pid, signal.SIGKILL)
    os.waitid(os.P_PID, holder.pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped
    try:
        with VmLock(vmx):
            pass
    finally:
        holder.wait()


def test_same_process_second_lock_is_refused(tmp_path: Path) -> None:
    vmx = tmp_path / "vm.vmx"
    vmx.write_text("")
    with VmLock(vmx):
        with pytest.raises(VmLockedError, match=rf"in use by vmm process {os.getpid()}"):
            VmLock(vmx).acquire()
    VmLock(vmx).acquire()


def test_a_lock_left_by_another_program_is_respected(tmp_path: Path) -> None:
    vmx = tmp_path / "vm.vmx"
    vmx.write_text("")
    (tmp_path / "vm.vmx.lck").mkdir()
    (tmp_path / "vm.vmx.lck" / "M12345.lck").write_text("some-host 999 1 X\n")
    with pytest.raises(VmLockedError, match="locked by another program"):
        VmLock(vmx).acquire()
