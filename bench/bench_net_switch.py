"""VM-to-VM networking through vmm's switch, next to QEMU's on the same Debian guests.

    python -m bench.bench_net_switch

Two guests of `make linux-guest` (tests/e2e/linux_switch_init.sh as /init): b serves 16 MiB
over HTTP (busybox httpd), a pings b 20 times and fetches the file with busybox wget. The
guests measure themselves (ping's round-trip line, /proc/uptime around wget), so each
figure is in the guest's own time; the host wall time of each run is printed beside it.

1. `vmm lab` (one process, lockstep, 1 ms slices): guest time is virtual time, so the
   figures are those of the deterministic lab (latency includes one slice per hop);
2. QEMU (TCG): two qemu-system-x86_64 plugged into a `vmm switch` process with
   ``-netdev stream`` (guest time is host time): what the switch process costs;
3. QEMU (TCG) alone: the same two VMs joined directly by ``-netdev stream`` (one listens,
   the other connects): QEMU's own VM-to-VM figure.
Ratios are printed from these runs, measured one after the other in this process.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.test_switch_linux import linux_disk

MIB = 16
LAB = """
name = "bench"
run = "600s"
[[switch]]
name = "sw0"
[[vm]]
name = "a"
image = "a.img"
mem = "128M"
nic = [{ switch = "sw0" }]
[[vm]]
name = "b"
image = "b.img"
mem = "128M"
nic = [{ switch = "sw0" }]
[[step]]
vm = "a"
expect = "net-check: done"
within = "500s"
"""
CLIENT = "net.ip=10.9.0.1/24 net.wait=10.9.0.2 net.rtt=10.9.0.2 net.fetch=10.9.0.2 net.ping=10.9.0.2"
SERVER = f"net.ip=10.9.0.2/24 net.serve={MIB} net.stay"


def figures(serial: str) -> tuple[float | None, float | None]:
    """(average ping round trip in ms, fetch throughput in MB/s) the guest printed."""
    rtt = re.search(r"rtt \S+ round-trip min/avg/max = [\d.]+/([\d.]+)/", serial)
    fetched = re.search(r"fetched (\d+) bytes in ([\d.]+) s", serial)
    mbps = None
    if fetched and float(fetched.group(2)) > 0:
        mbps = int(fetched.group(1)) / float(fetched.group(2)) / 1e6
    return (float(rtt.group(1)) if rtt else None), mbps


def run_lab(work: Path) -> tuple[str, float]:
    (work / "lab.toml").write_text(LAB)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vmm", "lab", str(work / "lab.toml"), "--out", str(work / "lab"),
                    "--quiet"], check=False, timeout=3600)  # fmt: skip
    wall = time.perf_counter() - start
    return (work / "lab" / "a.serial").read_bytes().decode("latin-1"), wall


def run_qemu(work: Path, through_switch: bool) -> tuple[str, float]:
    sock = work / "sw.sock"
    switch = None
    if through_switch:
        switch = subprocess.Popen([sys.executable, "-m", "vmm", "switch", str(sock)], stderr=subprocess.PIPE,
                                  text=True)  # fmt: skip
        switch.stderr.readline()
    common = ["qemu-system-x86_64", "-M", "pc", "-m", "128", "-vga", "none", "-display", "none", "-no-reboot",
              "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]  # fmt: skip
    netdev = f"stream,id=n0,addr.type=unix,addr.path={sock}"
    start = time.perf_counter()
    server = subprocess.Popen(common + ["-serial", "null", "-drive", f"file={work / 'b.img'},format=raw,if=ide",
                                        "-netdev", netdev + (",server=off" if through_switch else ",server=on"),
                                        "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:09:00:02"],
                              stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        if not through_switch:
            waited = 0.0
            while not sock.exists() and server.poll() is None and waited < 120:  # QEMU listens once started
                time.sleep(0.05)
                waited += 0.05
        subprocess.run(common + ["-serial", f"file:{work / 'qa.serial'}", "-netdev", netdev + ",server=off",
                                 "-drive", f"file={work / 'a.img'},format=raw,if=ide",
                                 "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:09:00:01"],
                       stdin=subprocess.DEVNULL, timeout=1800, check=False)  # fmt: skip
        wall = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait()
        if switch is not None:
            switch.terminate()
            switch.wait()
    sock.unlink(missing_ok=True)
    return (work / "qa.serial").read_bytes().decode("latin-1"), wall


def show(label: str, serial: str, wall: float) -> tuple[float | None, float | None]:
    rtt, mbps = figures(serial)
    rtt_text = f"{rtt:.3f} ms" if rtt is not None else "n/a"
    mbps_text = f"{mbps:.2f} MB/s" if mbps is not None else "n/a"
    print(f"   {label:<38} ping rtt avg {rtt_text:>10}  fetch {MIB} MiB {mbps_text:>11}  (host wall {wall:.1f} s)")
    return rtt, mbps


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        linux_disk(work, "a", CLIENT)
        linux_disk(work, "b", SERVER)
        lab = show("vmm lab (virtual time)", *run_lab(work))
        qemu = show("QEMU TCG via vmm switch (host time)", *run_qemu(work, through_switch=True))
        direct = show("QEMU TCG to QEMU directly (host time)", *run_qemu(work, through_switch=False))
    if None not in lab and None not in direct:
        print(f"   vmm lab / QEMU direct: rtt x{lab[0] / direct[0]:.2f}, throughput x{lab[1] / direct[1]:.3f}")
    if None not in qemu and None not in direct:
        print(f"   QEMU via vmm switch / QEMU direct: rtt x{qemu[0] / direct[0]:.2f}, "
              f"throughput x{qemu[1] / direct[1]:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
