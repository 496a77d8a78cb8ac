"""User-mode networking (`--nic user`, libslirp) next to QEMU's `-netdev user` on the same
Debian guest (`make linux-guest`, tests/e2e/linux_net_init.sh as /init), in one run.

    python -m bench usernet

- **ping 10.0.2.2**, 50 round trips 0.05 s apart: the round trip the guest's ping reports
  (its clock: virtual time on vmm, host time on QEMU TCG), and on vmm the host time (wall
  and vmm's CPU) from each echo request leaving the guest to ping's line for it on the
  serial port.
- **TCP guest -> host**: the guest pipes 10 MiB from /dev/zero into `nc 10.0.2.2 PORT`, a
  server on 127.0.0.1 counts the bytes; MB/s in host time (first to last byte at the
  server), in the guest's time (/proc/uptime around the transfer) and per host CPU second
  of the emulator (vmm's process time; QEMU's from /proc, both between the guest's marks),
  the figure that holds on a loaded host.

vmm boots the guest's syslinux disk on the pc machine (Unicorn); QEMU TCG boots the same
kernel, initrd and command line with -kernel on -M pc. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINUX = ROOT / "guests" / "build" / "linux"
BLOCKS = 160  # x 64 KiB = 10 MiB
MAX_INSTRUCTIONS = 80_000_000_000
QEMU_TIMEOUT = 600
RTT = re.compile(rb"round-trip min/avg/max = ([\d.]+)/([\d.]+)/([\d.]+) ms")
UPTIME = re.compile(rb"bench: uptime ([\d.]+) ([\d.]+)")
SEQ = re.compile(rb"seq=(\d+) ttl")


SINK = """
import socket, sys, time
expect = int(sys.argv[1])
server = socket.create_server(("127.0.0.1", 0))
server.settimeout(float(sys.argv[2]))
print(server.getsockname()[1], flush=True)
got, first, last = 0, 0.0, 0.0
try:
    connection, _ = server.accept()
    connection.settimeout(float(sys.argv[2]))
    while got < expect:
        chunk = connection.recv(1 << 20)
        if not chunk:
            break
        last = time.monotonic()
        first = first or last
        got += len(chunk)
    connection.close()
except OSError:
    pass
print(got, first, last, flush=True)
"""


class Sink:
    """A TCP server on 127.0.0.1, in a process of its own (a thread would take the GIL from
    vmm's run loop at every segment), that reads ``expect`` bytes and notes when they came."""

    def __init__(self, expect: int) -> None:
        self.expect = expect
        self.proc = subprocess.Popen([sys.executable, "-c", SINK, str(expect), str(QEMU_TIMEOUT)],
                                     stdout=subprocess.PIPE, text=True)  # fmt: skip
        self.port = int(self.proc.stdout.readline())
        self.got = 0
        self.first = self.last = 0.0

    def close(self) -> None:
        try:
            out, _ = self.proc.communicate(timeout=10)
            got, first, last = out.split()
            self.got, self.first, self.last = int(got), float(first), float(last)
        except (subprocess.TimeoutExpired, ValueError):
            self.proc.kill()
            self.proc.wait()


def guest_initrd(work: Path) -> Path:
    from tests.e2e.test_linux_user_net import INIT
    from tests.e2e.test_linux_virtio import cpio_replace

    initrd = work / "initrd-net.gz"
    archive = gzip.decompress((LINUX / "initrd.gz").read_bytes())
    initrd.write_bytes(gzip.compress(cpio_replace(archive, "init", INIT.read_bytes())))
    return initrd


class CpuMarks:
    """Host CPU seconds of a process at the guest's "bench: tcp start" and "bench: uptime"
    lines: the CPU the transfer cost, whatever else the host is running."""

    def __init__(self, cpu_seconds) -> None:  # noqa: ANN001
        self.cpu_seconds = cpu_seconds
        self.marks: dict[str, float] = {}
        self.line = bytearray()

    def feed(self, data: bytes) -> None:
        self.line.extend(data)
        if b"\n" in data:
            for key in (b"bench: tcp start", b"bench: uptime"):
                if key in self.line and key not in self.marks:
                    self.marks[key] = self.cpu_seconds()
            self.line.clear()

    def spent(self) -> float | None:
        if len(self.marks) < 2:
            return None
        return self.marks[b"bench: uptime"] - self.marks[b"bench: tcp start"]


def run_vmm(work: Path, append: str, on_serial=None) -> tuple[bytes, float | None]:  # noqa: ANN001
    from tests.e2e.test_linux_user_net import user_net_config
    from vmm.machine import Machine

    marks = CpuMarks(time.process_time)

    def serial(data: bytes) -> None:
        marks.feed(data)
        if on_serial is not None:
            on_serial(data)

    machine = Machine(user_net_config(work, append, {}), serial_out=serial)
    try:
        machine.run(max_instructions=MAX_INSTRUCTIONS)
        return bytes(machine.serial_transcript), marks.spent()
    finally:
        machine.close()


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_qemu(work: Path, append: str) -> tuple[bytes, float | None]:
    """QEMU TCG -M pc with -netdev user on the same kernel and initrd; its serial output and
    the CPU seconds between the transfer's marks (read from /proc while it runs)."""
    serial = work / "qemu.serial"
    serial.write_bytes(b"")
    proc = subprocess.Popen(["qemu-system-x86_64", "-M", "pc", "-m", "128", "-display", "none", "-vga", "none",
                             "-no-reboot", "-serial", f"file:{serial}", "-kernel", str(LINUX / "vmlinuz"),
                             "-initrd", str(guest_initrd(work)), "-append", f"console=ttyS0 {append}",
                             "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,disable-legacy=on",
                             "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    marks = CpuMarks(lambda: proc_cpu_seconds(proc.pid))
    seen = 0
    deadline = time.monotonic() + QEMU_TIMEOUT
    while proc.poll() is None and time.monotonic() < deadline:
        data = serial.read_bytes()[seen:]
        for byte in data.splitlines(keepends=True):
            marks.feed(byte)
        seen += len(data)
        time.sleep(0.005)  # a bench: sampling QEMU's CPU time as its serial output grows
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    return serial.read_bytes(), marks.spent()


def ping_vmm(work: Path) -> tuple[tuple[float, ...], float, float]:
    """Guest-reported min/avg/max (virtual ms), and the mean host ms (wall, then vmm's CPU)
    from each echo request leaving the guest to ping's line for it on the serial port."""
    sent: dict[int, tuple[float, float]] = {}
    seen: list[tuple[float, float]] = []
    line = bytearray()

    def on_serial(data: bytes) -> None:
        line.extend(data)
        if data == b"\n":
            match = SEQ.search(line)
            if match and int(match[1]) in sent:
                wall, cpu = sent[int(match[1])]
                seen.append((time.perf_counter() - wall, time.process_time() - cpu))
            line.clear()

    from vmm.net import backend as backends

    original = backends.BACKENDS["user"]

    def traced(options, name, now_ns):  # noqa: ANN001, ANN202
        inner = original(options, name, now_ns)
        send = inner.send

        def send_traced(frame: bytes) -> None:
            # an ICMP echo request (type 8): its sequence number is at IP header + 6
            if len(frame) > 42 and frame[12:14] == b"\x08\x00" and frame[23] == 1:
                icmp = 14 + (frame[14] & 15) * 4
                if frame[icmp] == 8:
                    sequence = int.from_bytes(frame[icmp + 6 : icmp + 8], "big")
                    sent[sequence] = (time.perf_counter(), time.process_time())
            send(frame)

        inner.send = send_traced
        return inner

    backends.BACKENDS["user"] = traced
    try:
        text, _ = run_vmm(work, "bench=ping", on_serial)
    finally:
        backends.BACKENDS["user"] = original
    match = RTT.findall(text)
    if not match or not seen:
        raise RuntimeError("vmm: the guest's ping did not finish:\n" + text[-2000:].decode(errors="replace"))
    last = seen[-50:]
    return (
        tuple(float(x) for x in match[-1]),
        1000 * sum(w for w, _ in last) / len(last),
        1000 * sum(c for _, c in last) / len(last),
    )


def tcp(run, work: Path) -> tuple[float, float, float | None]:  # noqa: ANN001
    """MB/s in host time (at the server), in guest time (/proc/uptime), per host CPU second."""
    sink = Sink(BLOCKS * 65536)
    try:
        text, cpu = run(work, f"bench=tcp hostport={sink.port} size={BLOCKS}")
    finally:
        sink.close()
    uptime = UPTIME.search(text)
    if sink.got < sink.expect or uptime is None:
        raise RuntimeError(f"TCP transfer incomplete ({sink.got} of {sink.expect} bytes):\n"
                           + text[-2000:].decode(errors="replace"))  # fmt: skip
    megabytes = sink.got / 1e6
    guest_seconds = max(float(uptime[2]) - float(uptime[1]), 0.01)
    per_cpu = megabytes / cpu if cpu else None
    return megabytes / max(sink.last - sink.first, 1e-6), megabytes / guest_seconds, per_cpu


def main() -> None:
    if not (LINUX / "disk.img").exists() or shutil.which("qemu-system-x86_64") is None:
        print("   usernet: skipped (run make linux-guest; needs qemu-system-x86_64)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        vmm_rtt, vmm_host_ms, vmm_cpu_ms = ping_vmm(work)
        qemu_text, _ = run_qemu(work, "bench=ping")
        qemu_rtt = [float(x) for x in RTT.findall(qemu_text)[-1]] if RTT.search(qemu_text) else None
        print(f"   ping 10.0.2.2 x50, guest-reported min/avg/max: vmm {vmm_rtt[0]:.3f}/{vmm_rtt[1]:.3f}/"
              f"{vmm_rtt[2]:.3f} ms (virtual time)"
              + (f", QEMU TCG {qemu_rtt[0]:.3f}/{qemu_rtt[1]:.3f}/{qemu_rtt[2]:.3f} ms (host time)" if qemu_rtt
                 else ", QEMU: no result"))  # fmt: skip
        ratio = f"; ratio to QEMU's avg {vmm_host_ms / qemu_rtt[1]:.1f}x" if qemu_rtt else ""
        print(f"   ping on vmm in host time: {vmm_host_ms:.2f} ms wall ({vmm_cpu_ms:.2f} ms of vmm's CPU) from echo "
              f"request to ping's line on the serial port (mean of 50){ratio}")  # fmt: skip
        vmm = tcp(run_vmm, work)
        qemu = tcp(run_qemu, work)
        print(f"   TCP guest->host, 10 MiB through user net, MB/s: vmm {vmm[0]:.2f} host time, {vmm[1]:.2f} virtual, "
              f"{fmt(vmm[2])} per vmm CPU s; QEMU TCG {qemu[0]:.2f} host time, {qemu[1]:.2f} guest time, "
              f"{fmt(qemu[2])} per QEMU CPU s; QEMU/vmm {qemu[0] / vmm[0]:.1f}x host time"
              + (f", {qemu[2] / vmm[2]:.1f}x per CPU s" if vmm[2] and qemu[2] else ""))  # fmt: skip
        print(f"   (host load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


def fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
