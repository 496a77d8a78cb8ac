"""Helpers of the snapshot and control-channel tests: a copy of the toy OS bundle, a
`vmm run` of it in the background, and waiting for what it writes (never a sleep that a
result depends on: each wait has a generous deadline and fails the test when it passes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, require_file

VMM = [sys.executable, "-m", "vmm"]
TOYOS_BUNDLE = ROOT / "guests" / "build" / "toyos"
WAIT = 120.0  # seconds: generous, for a loaded shared host


def toyos_bundle(tmp_path: Path, name: str = "vm") -> Path:
    """A copy of guests/build/toyos as ``tmp_path/name/name.vmx``."""
    require_file(TOYOS_BUNDLE / "toyos.vmx", "run make guests")
    folder = tmp_path / name
    folder.mkdir()
    for item in TOYOS_BUNDLE.iterdir():
        if item.suffix in (".vmx", ".vmdk", ".nvram"):
            shutil.copy(item, folder / (name + item.suffix if item.stem == "toyos" else item.name))
    vmx = folder / f"{name}.vmx"
    text = vmx.read_text().replace('"toyos.vmdk"', f'"{name}.vmdk"').replace('"toyos.nvram"', f'"{name}.nvram"')
    vmx.write_text(text)
    return vmx


def vmm(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([*VMM, *map(str, args)], capture_output=True, text=True, cwd=ROOT, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"vmm {' '.join(map(str, args))}: exit {result.returncode}\n{result.stderr}")
    return result


def wait_for(predicate, what: str, proc: subprocess.Popen | None = None, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"vmm exited ({proc.returncode}) while waiting for {what}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


class RunningVm:
    """`vmm run VMX` in the background, serial to a file; stopped (quit, then kill) at exit."""

    def __init__(self, vmx: Path, *flags: str) -> None:
        self.vmx = vmx
        self.serial = vmx.parent.parent / f"{vmx.stem}.serial.txt"
        self.socket = vmx.parent / f"{vmx.name}.ctl" / "monitor.sock"
        self.proc = subprocess.Popen(
            [*VMM, "run", str(vmx), "--serial", f"file:{self.serial}", *flags],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        wait_for(self.socket.exists, "the control socket", self.proc)

    def output(self) -> bytes:
        return self.serial.read_bytes() if self.serial.exists() else b""

    def wait(self) -> tuple[int, str]:
        _, err = self.proc.communicate(timeout=WAIT)
        return self.proc.returncode, err

    def __enter__(self) -> RunningVm:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            vmm("ctl", self.vmx, "quit", check=False)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, 9)
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
