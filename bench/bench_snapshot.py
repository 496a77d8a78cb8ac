"""Snapshots: revert and take of a 256 MiB machine, .vmem disk usage, and the memory of 10
VMs started from one snapshot, each next to QEMU's savevm/loadvm on the same RAM size.

    python -m bench.bench_snapshot

The guest is a 64-byte Multiboot kernel (built here: the a.out-kludge header and eight
instructions) that fills 16 MiB of its 256 MiB with a pattern, writes "R" to COM1 and halts;
vmm boots it with --kernel, QEMU with -kernel (TCG, a qcow2 disk for its internal snapshots,
HMP on a UNIX socket). All figures come from one run, side by side:

- take: vmm ``Machine.take_snapshot`` (sparse .vmem + .vmsn, fsync'ed) against HMP ``savevm``
  (median of 5 each);
  the disk space each uses (``du`` of the .vmem, the qcow2's growth);
- revert: vmm ``Machine.revert_snapshot`` in a loop against HMP ``loadvm`` (median and
  reverts per second);
- sharing: 10 processes each start a VM from the snapshot (``Machine.from_snapshot``) and read
  the guest's 16 MiB; the guest-RAM mapping's PSS summed over the 10 (from /proc/PID/smaps)
  against 10 processes that each boot the kernel themselves; QEMU's RSS after ``-loadvm``
  (no sharing without KSM).
"""

from __future__ import annotations

import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20
RAM_MB = 256
TOUCHED = 16 * MIB
LOAD = 0x100000
REVERTS = 200
TAKES = 5
VMS = 10


def kernel_image() -> bytes:
    """Multiboot (a.out kludge, flags bit 16): fill 16 MiB at 16 MiB, print R, halt."""
    flags = 0x00010000
    magic = 0x1BADB002
    header = struct.pack("<8I", magic, flags, -(magic + flags) & 0xFFFFFFFF, LOAD, LOAD, 0, 0, LOAD + 32)
    code = bytes.fromhex(
        "bf00000001"  # mov edi, 0x1000000
        "b900004000"  # mov ecx, 0x400000 (dwords)
        "b85a5a5a5a"  # mov eax, 0x5a5a5a5a
        "fc"  # cld
        "f3ab"  # rep stosd
        "66baf803"  # mov dx, 0x3f8
        "b052"  # mov al, 'R'
        "ee"  # out dx, al
        "fa"  # cli
        "f4"  # hlt
        "ebfd"  # jmp to the hlt
    )
    return (header + code).ljust(512, b"\0")


def pss_of_range(pid: int, address: int, size: int) -> int:
    """KiB of PSS of the mappings inside ``address``..+``size`` in process ``pid`` (guest RAM;
    the kernel may split it into several areas)."""
    total = 0
    with open(f"/proc/{pid}/smaps") as smaps:
        inside = False
        for line in smaps:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                start, end = (int(x, 16) for x in head.split("-"))
                inside = start < address + size and end > address  # an area may be merged with a neighbour
            elif inside and head == "Pss:":
                total += int(line.split()[1])
    return total


def pss_total(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        return next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))


CHILD = r"""
import sys
from pathlib import Path
from vmm.config import MachineConfig, SerialConfig
from vmm.machine import Machine
mode, path, RAM_MB, TOUCHED = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if mode == "snapshot":
    machine = Machine.from_snapshot(path)
else:
    machine = Machine(MachineConfig(memory_mb=RAM_MB, kernel=Path(path), serial=SerialConfig("none")))
    machine.run(max_instructions=50_000_000)
machine.read_physical(0x1000000, TOUCHED)  # the guest's data, as a running guest would use it
print(machine.memory.address, flush=True)
sys.stdin.read()
"""


def vms_pss(mode: str, path: Path) -> tuple[int, int]:
    """(guest RAM PSS, whole-process PSS) in KiB, summed over VMS processes alive together."""
    argv = [sys.executable, "-c", CHILD, mode, str(path), str(RAM_MB), str(TOUCHED)]
    procs = [subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(VMS)]
    try:
        addresses = [int(p.stdout.readline()) for p in procs]
        ram = sum(pss_of_range(p.pid, a, RAM_MB * MIB) for p, a in zip(procs, addresses, strict=True))
        total = sum(pss_total(p.pid) for p in procs)
    finally:
        for p in procs:
            p.stdin.close()
            p.wait()
            p.stdout.close()
    return ram, total


class Hmp:
    """QEMU's human monitor on a UNIX socket: a command, then everything up to the prompt."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock.connect(str(path))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._until_prompt()

    def _until_prompt(self) -> str:
        data = b""
        while not data.endswith(b"(qemu) "):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("QEMU closed its monitor")
            data += chunk
        return data.decode(errors="replace")

    def command(self, line: str) -> tuple[float, str]:
        start = time.perf_counter()
        self.sock.sendall(line.encode() + b"\n")
        out = self._until_prompt()
        return time.perf_counter() - start, out


def qemu_figures(work: Path, kernel: Path) -> dict:
    disk = work / "q.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    monitor = work / "hmp.sock"
    serial = work / "q.serial"
    argv = ["qemu-system-x86_64", "-M", "pc", "-m", str(RAM_MB), "-display", "none", "-kernel", str(kernel),
            "-drive", f"file={disk},if=ide,format=qcow2", "-serial", f"file:{serial}", "-monitor",
            f"unix:{monitor},server,nowait", "-nodefaults", "-accel", "tcg"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    figures: dict = {}
    try:
        hmp = Hmp(monitor)
        deadline = time.monotonic() + 60
        while not (serial.exists() and b"R" in serial.read_bytes()):
            if time.monotonic() > deadline:
                raise RuntimeError("QEMU's guest never said R")
            time.sleep(0.05)
        size_before = disk.stat().st_blocks * 512
        figures["take"], _ = hmp.command("savevm s1")
        figures["disk"] = disk.stat().st_blocks * 512 - size_before
        takes = [figures["take"]] + [hmp.command(f"savevm t{n}")[0] for n in range(TAKES - 1)]
        figures["take"] = statistics.median(takes)
        loads = [hmp.command("loadvm s1")[0] for _ in range(20)]
        figures["revert"] = statistics.median(loads)
        with open(f"/proc/{proc.pid}/status") as status:
            figures["rss"] = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        hmp.sock.sendall(b"quit\n")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    # A QEMU started with -loadvm: what one VM from the snapshot holds.
    proc = subprocess.Popen([*argv, "-loadvm", "s1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        hmp = Hmp(monitor)
        hmp.command("info status")
        with open(f"/proc/{proc.pid}/status") as status:
            figures["rss_loadvm"] = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        hmp.sock.sendall(b"quit\n")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    return figures


def main() -> int:
    from vmm.config import MachineConfig, SerialConfig
    from vmm.machine import Machine

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        kernel = work / "touch16.bin"
        kernel.write_bytes(kernel_image())
        machine = Machine(MachineConfig(memory_mb=RAM_MB, kernel=kernel, serial=SerialConfig("none")))
        machine.run(max_instructions=50_000_000)
        assert machine.serial_transcript == b"R", machine.serial_transcript
        takes = []
        for n in range(TAKES):
            start = time.perf_counter()
            snap = machine.take_snapshot(work / f"s{n}.vmsn")
            takes.append(time.perf_counter() - start)
        take = statistics.median(takes)
        usage = (work / "s0.vmem").stat().st_blocks * 512
        times = []
        for _ in range(REVERTS):
            machine.write_physical(0x1000000, b"\xa5" * 4096)  # the guest changed something since
            start = time.perf_counter()
            machine.revert_snapshot(snap)
            times.append(time.perf_counter() - start)
        assert machine.read_physical(0x1000000, 4) == b"ZZZZ"
        revert = statistics.median(times)
        per_second = REVERTS / sum(times)
        machine.close()
        shared_ram, shared_total = vms_pss("snapshot", work / "s0.vmsn")
        alone_ram, alone_total = vms_pss("boot", kernel)
        qemu = qemu_figures(work, kernel)

    print(f"snapshot of a {RAM_MB} MiB machine whose guest touched {TOUCHED // MIB} MiB (vmm on Unicorn; QEMU TCG):")
    print(f"  take:    vmm {take * 1000:8.1f} ms   QEMU savevm {qemu['take'] * 1000:8.1f} ms   "
          f"(vmm/QEMU {take / qemu['take']:.2f}x)")  # fmt: skip
    print(f"  disk:    vmm .vmem {usage / MIB:6.1f} MiB on disk (of {RAM_MB} MiB)   "
          f"QEMU qcow2 grew {qemu['disk'] / MIB:6.1f} MiB")  # fmt: skip
    ratio = qemu["revert"] / revert
    print(f"  revert:  vmm {revert * 1000:8.3f} ms median, {per_second:,.0f} reverts/s   "
          f"QEMU loadvm {qemu['revert'] * 1000:8.1f} ms median   (QEMU/vmm {ratio:,.0f}x)")  # fmt: skip
    print(f"  {VMS} VMs:  guest RAM PSS from one snapshot {shared_ram / 1024:7.1f} MiB, each booted alone "
          f"{alone_ram / 1024:7.1f} MiB (sharing factor {alone_ram / max(shared_ram, 1):.1f}x); "
          f"whole processes {shared_total / 1024:.0f} MiB vs {alone_total / 1024:.0f} MiB")  # fmt: skip
    print(f"  QEMU:    RSS of one VM after loadvm {qemu['rss_loadvm'] / 1024:.0f} MiB "
          f"(x{VMS} = {qemu['rss_loadvm'] * VMS / 1024:.0f} MiB: no sharing without KSM)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
