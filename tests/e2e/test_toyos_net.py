"""The toy OS's network side: PCI enumeration, its virtio-net driver, eth0 and ping.

On vmm's ``pc`` machine the kernel lists the PCI functions, binds eth0 to the
virtio-net function and init brings it up; ``ifconfig`` shows it and ``ping`` goes
through the whole path (ARP, ICMP echo, the kernel's answers). Three set-ups:

- one VM whose NIC's backend is ``loopback``: pinging its own address sends every
  frame out and gets it back, so the kernel answers its own ARP request and echo;
- two VMs joined by a wire (a backend pair in this test), run in lock step by virtual
  time: each pings the other;
- QEMU ``-M pc`` with ``virtio-net-pci`` (modern only) and user-mode networking: the
  same driver lines and ``ifconfig``, and a ping of slirp's gateway 10.0.2.2.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import QEMU_DETERMINISTIC, require_file, require_tool
from tests.e2e.test_toyos_qemu import INIT_LINE, PROMPT, SerialConsole
from tests.e2e.test_toyos_vmm import BIOS, BOOT_INSTRUCTIONS, CLOCK_LINE, FOUND, TOYOS_IMG, VmmConsole
from vmm.config import DiskConfig, MachineConfig, NicConfig, SerialConfig
from vmm.machine import Machine
from vmm.net.backend import NetBackend

MAC1, MAC2 = "52:54:00:00:00:01", "52:54:00:00:00:02"
SLICE_NS = 5_000_000  # lock step of the two VMs: 5 ms of virtual time each turn
COUNTERS = re.compile(r"^ +RX packets .*\n", re.M)


class PcConsole(VmmConsole):
    """The toy OS on ``--machine pc`` with the given NICs and virtio disks (no virtio-rng)."""

    def __init__(self, nics: list[NicConfig], image: Path = TOYOS_IMG, virtio_disks: tuple[Path, ...] = ()) -> None:
        require_file(image)
        require_file(BIOS, "run make -C firmware")
        disks = [DiskConfig("ide0:0", image)] + [DiskConfig(f"virtio{i}", d) for i, d in enumerate(virtio_disks)]
        config = MachineConfig(bios=BIOS, machine="pc", disks=disks, serial=SerialConfig("none"), nics=nics,
                               rng=False)  # fmt: skip
        self.machine = Machine(config, serial_out=self._on_serial)
        self._wanted = b""
        self._mark = 0
        self.boot_log = ""

    def command(self, line: str) -> str:
        return INIT_LINE.sub("", super().command(line))


def boot(nics: list[NicConfig]) -> PcConsole:
    console = PcConsole(nics)
    console.boot_log = console.expect(PROMPT, BOOT_INSTRUCTIONS)
    return console


@pytest.fixture(scope="module")
def looped() -> Iterator[PcConsole]:
    console = boot([NicConfig(connection="loopback", mac=MAC1)])
    try:
        yield console
    finally:
        console.close()


def test_kernel_lists_the_pci_bus_and_binds_eth0(looped: PcConsole) -> None:
    lines = looped.boot_log.splitlines()
    assert "kernel: pci 00:00.0 8086:1237 class 0600" in lines
    assert "kernel: pci 00:01.0 8086:7000 class 0601" in lines
    assert "kernel: pci 00:02.0 1af4:1041 class 0200 irq 11" in lines
    assert "kernel: pci: 3 functions on bus 0" in lines
    assert f"kernel: eth0: virtio-net at 00:02.0 irq 11, MAC {MAC1}, link up" in lines


def test_init_prints_the_team_id_and_brings_up_eth0(looped: PcConsole) -> None:
    lines = looped.boot_log.splitlines()
    assert "init: team ID not set (team=N on the kernel command line)" in lines
    # No ip= on the command line: 10.0.0.X from the MAC's last byte.
    assert f"init: eth0 up, MAC {MAC1}, link up, inet 10.0.0.1/24" in lines


def test_ifconfig_shows_eth0(looped: PcConsole) -> None:
    out = looped.command("ifconfig")
    assert COUNTERS.sub("", out) == (
        "eth0: virtio-net, link up\n"
        f"      ether {MAC1}\n"
        "      inet 10.0.0.1/24 netmask 255.255.255.0\n"
        "      pci 00:02.0 irq 11\n"
    )


def test_ping_own_address_through_the_loopback_backend(looped: PcConsole) -> None:
    nic = looped.machine.pci.nics[0]
    sent = nic.stats["tx_frames"]
    assert looped.command("ping 10.0.0.1 2") == (
        "PING 10.0.0.1: 56 data bytes\n"
        "64 bytes from 10.0.0.1: icmp_seq=1 ttl=64\n"
        "64 bytes from 10.0.0.1: icmp_seq=2 ttl=64\n"
        "--- 10.0.0.1 ping statistics ---\n"
        "2 packets transmitted, 2 received, 0% packet loss\n"
    )
    # ARP request + reply, then per ping the request and the kernel's reply.
    assert nic.stats["tx_frames"] - sent == 2 + 2 * 2


def test_ping_nobody_says_unreachable(looped: PcConsole) -> None:
    assert looped.command("ping 10.0.0.9 1") == (
        "PING 10.0.0.9: 56 data bytes\n"
        "ping: 10.0.0.9: no ARP reply (host unreachable)\n"
        "--- 10.0.0.9 ping statistics ---\n"
        "0 packets transmitted, 0 received, 100% packet loss\n"
    )


def test_ifconfig_sets_the_address_and_rejects_nonsense(looped: PcConsole) -> None:
    assert "      inet 10.0.0.7/16 netmask 255.255.0.0\n" in looped.command("ifconfig eth0 10.0.0.7/16")
    assert looped.command("ifconfig eth0 10.0.0.300") == "ifconfig: usage: ifconfig [eth0] [A.B.C.D[/N]]\n"
    assert looped.command("ping 10.0.0.7 1").endswith("1 packets transmitted, 1 received, 0% packet loss\n")
    usage = "ping: usage: ping A.B.C.D [COUNT (1-100, default 3) [WAIT_MS per answer (10-60000, default 1000)]]\n"
    assert looped.command("ping 10.0.0") == usage
    assert looped.command("ping 10.0.0.7 1 5") == usage


class Wire(NetBackend):
    """One end of a cable: what this end sends, the other end receives."""

    kind = "wire"

    def __init__(self) -> None:
        super().__init__()
        self.peer: Wire | None = None

    def send(self, frame: bytes) -> None:
        assert self.peer is not None
        self.peer.deliver(frame)


def run_in_lock_step(machines: list[Machine], until: PcConsole, wanted: str, limit_ns: int = 20_000_000_000) -> str:
    """Run the machines turn by turn, SLICE_NS of virtual time each, until ``until``
    has printed ``wanted``; return its output up to there."""
    needle = wanted.replace("\n", "\r\n").encode()
    start = until._mark
    for _ in range(limit_ns // SLICE_NS):
        for machine in machines:
            target = machine.clock.now_ns() + SLICE_NS

            def poll(machine: Machine = machine, target: int = target) -> None:
                if machine.clock.now_ns() >= target:
                    machine.request_stop(FOUND)

            machine.run(poll=poll, timeout=60)
            at = until.machine.serial_transcript.find(needle, start)
            if at >= 0:
                until._mark = at + len(needle)
                return until.machine.serial_transcript[start : until._mark].decode().replace("\r\n", "\n")
    raise AssertionError(f"no {wanted!r}: {until.text}")


def test_two_vms_on_a_wire_ping_each_other() -> None:
    first, second = boot([NicConfig(connection="null", mac=MAC1)]), boot([NicConfig(connection="null", mac=MAC2)])
    try:
        a, b = Wire(), Wire()
        a.peer, b.peer = b, a
        for console, end in ((first, a), (second, b)):
            nic = console.machine.pci.nics[0]
            nic.backend = end
            end.attach(nic.receive)
        machines = [first.machine, second.machine]
        for console, target in ((first, "10.0.0.2"), (second, "10.0.0.1")):
            console.machine.send(f"ping {target} 2\r")
            out = CLOCK_LINE.sub("", INIT_LINE.sub("", run_in_lock_step(machines, console, PROMPT)))
            assert out == (
                f"ping {target} 2\n"
                f"PING {target}: 56 data bytes\n"
                f"64 bytes from {target}: icmp_seq=1 ttl=64\n"
                f"64 bytes from {target}: icmp_seq=2 ttl=64\n"
                f"--- {target} ping statistics ---\n"
                "2 packets transmitted, 2 received, 0% packet loss\n" + PROMPT
            )
    finally:
        first.close()
        second.close()


QEMU_PC_NET = ["-M", "pc", "-m", "64", "-vga", "none", "-display", "none", "-serial", "stdio", "-no-reboot",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", *QEMU_DETERMINISTIC]  # fmt: skip


@pytest.mark.qemu
@pytest.mark.parametrize("bios", ["vmm", "seabios"])
def test_qemu_pc_binds_the_same_driver_and_pings_its_gateway(looped: PcConsole, bios: str) -> None:
    """With vmm's BIOS the lines are the same as on vmm; SeaBIOS routes slot 2 to IRQ 10
    (its PIRQ A-D map is 10, 10, 11, 11; vmm's BIOS uses 10, 11, 10, 11)."""
    qemu = require_tool("qemu-system-x86_64")
    firmware = ["-bios", str(BIOS)] if bios == "vmm" else []
    irq = 11 if bios == "vmm" else 10
    drive = f"file={require_file(TOYOS_IMG)},format=raw,if=ide"
    console = SerialConsole([qemu, *QEMU_PC_NET, *firmware, "-drive", drive, "-netdev", "user,id=n0",
                             "-device", f"virtio-net-pci,netdev=n0,disable-legacy=on,addr=2,mac={MAC1}"])  # fmt: skip
    try:
        qemu_log = console.expect(PROMPT)
        ours = [line for line in looped.boot_log.splitlines() if line.startswith(("kernel: eth0", "init: eth0"))]
        theirs = [line for line in qemu_log.splitlines() if line.startswith(("kernel: eth0", "init: eth0"))]
        assert theirs == [line.replace("irq 11", f"irq {irq}") for line in ours]
        assert f"kernel: pci 00:02.0 1af4:1041 class 0200 irq {irq}" in qemu_log.splitlines()
        assert COUNTERS.sub("", console.command("ifconfig eth0 10.0.2.15")) == (
            "eth0: virtio-net, link up\n"
            f"      ether {MAC1}\n"
            "      inet 10.0.2.15/24 netmask 255.255.255.0\n"
            f"      pci 00:02.0 irq {irq}\n"
        )
        out = console.command("ping 10.0.2.2 2")
        assert re.fullmatch(
            r"PING 10\.0\.2\.2: 56 data bytes\n"
            r"(64 bytes from 10\.0\.2\.2: icmp_seq=\d ttl=\d+\n){2}"
            r"--- 10\.0\.2\.2 ping statistics ---\n"
            r"2 packets transmitted, 2 received, 0% packet loss\n",
            out,
        ), out
    finally:
        console.close()


@pytest.mark.qemu
def test_two_toy_os_vms_under_qemu_ping_each_other(tmp_path: Path) -> None:
    """QEMU's own virtio-net-pci as the peer: two QEMUs joined by a datagram socket pair
    (``-netdev dgram`` over Unix sockets). Real time here, not icount: a guest waiting for
    an answer must not have its clock jump ahead of the other machine; each answer may take
    up to 10 s (ping's third argument), so a loaded host does not lose one."""
    qemu = require_tool("qemu-system-x86_64")
    image = require_file(TOYOS_IMG)
    consoles = []
    try:
        for me, peer in ((1, 2), (2, 1)):
            netdev = (f"dgram,id=n0,local.type=unix,local.path={tmp_path}/vm{me}.sock,"
                      f"remote.type=unix,remote.path={tmp_path}/vm{peer}.sock")  # fmt: skip
            nic = f"virtio-net-pci,netdev=n0,disable-legacy=on,addr=2,mac={MAC1[:-1]}{me}"
            consoles.append(SerialConsole([qemu, "-M", "pc", "-m", "64", "-vga", "none", "-display", "none",
                                           "-serial", "stdio", "-no-reboot", "-snapshot",
                                           "-drive", f"file={image},format=raw,if=ide", "-netdev", netdev,
                                           "-device", nic]))  # fmt: skip
        for console in consoles:
            console.expect(PROMPT)
        for console, target in zip(consoles, ("10.0.0.2", "10.0.0.1"), strict=True):
            assert console.command(f"ping {target} 2 10000") == (
                f"PING {target}: 56 data bytes\n"
                f"64 bytes from {target}: icmp_seq=1 ttl=64\n"
                f"64 bytes from {target}: icmp_seq=2 ttl=64\n"
                f"--- {target} ping statistics ---\n"
                "2 packets transmitted, 2 received, 0% packet loss\n"
            )
    finally:
        for console in consoles:
            console.close()
