"""`vmm switch PATH` as a process: vmm NICs and QEMU-framed peers on one switch, `vmm switch
show`, a hostile peer's garbage and flood, and ports freed on disconnect."""

from __future__ import annotations

import random
import select
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.net.test_switch import BCAST, frame, mac, tagged
from vmm.errors import ConfigError
from vmm.net.pcap import read_pcap
from vmm.net.switch import PortMode
from vmm.net.switch_client import SwitchBackend

GUARD = 20.0  # seconds: a hang fails instead of blocking the suite; nothing is timed


@pytest.fixture
def switch(tmp_path: Path):
    path = tmp_path / "sw.sock"
    proc = subprocess.Popen([sys.executable, "-m", "vmm", "switch", str(path), "--pcap", str(tmp_path / "cap")],
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert "serving" in proc.stderr.readline()
    yield path
    proc.terminate()
    proc.wait(GUARD)
    assert not path.exists()  # the socket goes with the switch


def show(path: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "vmm", "switch", "show", str(path)], capture_output=True, text=True,
                         timeout=GUARD)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


class Qemu:
    """A peer speaking QEMU's -netdev stream framing (no hello)."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(GUARD)
        self.sock.connect(str(path))
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(struct.pack(">I", len(data)) + data)

    def recv(self) -> bytes:
        while len(self.buffer) < 4 or len(self.buffer) < 4 + struct.unpack(">I", self.buffer[:4])[0]:
            chunk = self.sock.recv(65536)
            assert chunk, "the switch closed the connection"
            self.buffer += chunk
        length = struct.unpack(">I", self.buffer[:4])[0]
        data, self.buffer = self.buffer[4 : 4 + length], self.buffer[4 + length :]
        return data


def recv(backend: SwitchBackend, until: bytes | None = None) -> bytes:
    """The next frame for ``backend`` (or the first equal to ``until``, skipping others)."""
    got: list[bytes] = []
    backend.attach(got.append)
    while True:
        while not got:
            ready, _, _ = select.select(backend.fds(), [], [], GUARD)
            assert ready, "no frame came"
            backend.poll()
        data = got.pop(0)
        if until is None or data == until:
            return data


def test_vmm_nics_and_a_qemu_peer_share_the_switch(switch: Path, tmp_path: Path) -> None:
    a = SwitchBackend(switch, PortMode.access(1), "vm-a/ethernet0")
    t = SwitchBackend(switch, PortMode.trunk_of([1, 20]), "vm-t/ethernet0")
    q = Qemu(switch)
    q.send(frame(BCAST, mac(9)))  # the QEMU peer's first frame opens its port (access vlan 1)
    assert recv(a) == frame(BCAST, mac(9))
    assert recv(t) == tagged(BCAST, mac(9), 1)
    a.send(frame(mac(9), mac(1), b"to qemu"))
    assert q.recv() == frame(mac(9), mac(1), b"to qemu")
    text = show(switch)
    assert "vm-a/ethernet0" in text and "trunk 1,20 no native" in text and "stream-" in text
    assert "vlan    1  02:00:00:00:00:09  port   3" in text
    a.close()
    t.close()
    q.sock.close()
    caps = sorted((tmp_path / "cap").iterdir())
    assert [p.name for p in caps] == ["port1-vm-a_ethernet0.pcap", "port2-vm-t_ethernet0.pcap", "port3-stream-3.pcap"]
    trunk = [data for _ts, data in read_pcap(caps[1].read_bytes())]
    assert trunk == [tagged(BCAST, mac(9), 1)]


def test_a_bad_hello_is_refused_with_the_switchs_reason(switch: Path) -> None:
    with pytest.raises(ConfigError, match="refused the port: trunk=5000"):
        SwitchBackend(switch, PortMode(vlan=None, trunk=frozenset({5000})), "bad")


def test_no_switch_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no switch answers there.*vmm switch"):
        SwitchBackend(tmp_path / "nothing", PortMode.access(1), "x")


def test_garbage_and_a_flood_leave_the_switch_serving_the_others(switch: Path) -> None:
    a = SwitchBackend(switch, PortMode.access(1), "a")
    b = SwitchBackend(switch, PortMode.access(1), "b")
    rng = random.Random(1717)
    # A hostile peer: random frames, bad tags, runts, then a length no QEMU sends.
    hostile = Qemu(switch)
    for n in range(3000):
        size = rng.choice((0, 3, 13, 14, 18, 60, 1514, 9000))
        data = bytes(rng.getrandbits(8) for _ in range(size))
        if n % 3 == 0 and size >= 16:
            data = data[:12] + b"\x81\x00" + data[14:]
        hostile.send(data)
    hostile.sock.sendall(struct.pack(">I", 0x7FFF_FFFF) + b"junk")
    while hostile.sock.recv(65536):  # read until the switch hangs up
        pass
    # A second one sends bytes that are not JSON as a control record, and one just hangs up.
    rude = Qemu(switch)
    rude.sock.sendall(struct.pack(">I", 0x8000_0004) + b"{{{{")
    while rude.sock.recv(65536):
        pass
    Qemu(switch).sock.close()
    b.send(frame(BCAST, mac(2), b"still here"))
    assert recv(a, until=frame(BCAST, mac(2), b"still here"))  # past what the hostile peer flooded
    text = show(switch)
    assert "protocol_errors 2" in text
    assert " a " in text and " b " in text and "stream-" not in text  # the hostile ports are gone


def test_a_disconnected_vm_frees_its_port(switch: Path) -> None:
    a = SwitchBackend(switch, PortMode.access(1), "leaves")
    a.send(frame(BCAST, mac(5)))
    b = SwitchBackend(switch, PortMode.access(1), "stays")
    assert "leaves" in show(switch)
    a.close()
    b.send(frame(BCAST, mac(6)))
    text = show(switch)
    assert "leaves" not in text and "02:00:00:00:00:05" not in text and "stays" in text


def test_a_second_switch_on_the_same_path_is_refused(switch: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "vmm", "switch", str(switch)], capture_output=True, text=True,
                         timeout=GUARD)  # fmt: skip
    assert out.returncode == 2 and "a switch already serves this socket" in out.stderr
