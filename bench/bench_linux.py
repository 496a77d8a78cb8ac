"""Power-on to the Linux guest's init line (guests/linux, `make linux-guest`): host CPU
seconds of vmm (Unicorn) and of QEMU TCG (`-M isapc -cpu qemu64,-apic`) on the same
kernel, initrd and command line, measured side by side in one run, and their ratio.

Each is a whole process (Python or QEMU start-up included) stopped when the init line
appears on its serial output; the CPU time is the child's user + system time.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINUX = ROOT / "guests" / "build" / "linux"
INIT_LINE = b"vmm-linux-guest: init running as pid 1"
APPEND = "console=ttyS0"
QEMU = ["qemu-system-x86_64", "-M", "isapc", "-cpu", "qemu64,-apic", "-m", "128", "-display", "none",
        "-serial", "stdio", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]  # fmt: skip
BOOT = ["-kernel", "vmlinuz", "-initrd", "initrd.gz", "-append", APPEND]


def cpu_seconds_to_init(command: list[str]) -> float:
    """Run ``command`` until its output holds the init line; its CPU seconds (user + sys)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # stdin stays an open, silent pipe: at end of file QEMU's `-serial stdio` polls it busily.
    proc = subprocess.Popen(command, cwd=LINUX, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    seen = b""
    while INIT_LINE not in seen:
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            proc.wait()
            raise RuntimeError(f"{command[0]} ended before the init line (status {proc.returncode})")
        seen = seen[-len(INIT_LINE) :] + chunk
    proc.kill()
    proc.wait()
    proc.stdout.close()
    proc.stdin.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    if not (LINUX / "vmlinuz").exists() or shutil.which(QEMU[0]) is None:
        print("   linux: skipped (run make linux-guest; needs qemu-system-x86_64)")
        return
    vmm = [str(Path(sys.executable).with_name("vmm")), "run", "--kernel", "vmlinuz", "--initrd", "initrd.gz",
           "--append", APPEND]  # fmt: skip
    qemu_cpu = cpu_seconds_to_init(QEMU + BOOT)
    vmm_cpu = cpu_seconds_to_init(vmm)
    print(f"   power-on to Linux init, host CPU: vmm {vmm_cpu:.1f} s, QEMU TCG {qemu_cpu:.1f} s, "
          f"ratio vmm/QEMU {vmm_cpu / qemu_cpu:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
