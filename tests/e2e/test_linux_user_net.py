"""`--nic user` (libslirp) with Debian's kernel and busybox (the guest of `make linux-guest`,
its syslinux disk with linux_net_init.sh as /init): udhcpc gets 10.0.2.15 with gateway
10.0.2.2 and DNS 10.0.2.3, `ping 10.0.2.2` is answered, the guest's wget reaches a host
HTTP server on 127.0.0.1 through 10.0.2.2, and a host TCP client reaches busybox httpd in
the guest through `hostfwd=tcp::0-:80` (port 0: the port the kernel chose is read from the
backend, so nothing races) and reads its page. Every wait is on the guest's serial output
or on a socket event; all traffic stays on 127.0.0.1. Without a host socket (lease and
pings only) two runs are identical: serial bytes, instruction count, pcap. Three boots
(~6.5 G instructions each): marked slow (CI runs them). The CLI's hostfwd line and its port-in-use error are checked on
the toy OS (short runs).
"""

from __future__ import annotations

import gzip
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_file, require_tool
from tests.e2e.test_linux_virtio import cpio_replace
from vmm.config import DiskConfig, MachineConfig, NicConfig, SerialConfig
from vmm.machine import Machine

LINUX = ROOT / "guests" / "build" / "linux"
INIT = Path(__file__).resolve().parent / "linux_net_init.sh"
MAC = "52:54:00:12:34:56"
MAX_INSTRUCTIONS = 40_000_000_000
HOST_PAGE = b"hello from the host on 127.0.0.1"
GUEST_PAGE = "hello from the vmm guest over hostfwd"


def net_disk(work: Path, append: str) -> Path:
    """A copy of the Linux guest's syslinux disk whose initramfs has linux_net_init.sh as
    /init and whose kernel command line is ``console=ttyS0 APPEND``. (The disk, not
    --kernel: on the pc machine the BIOS routes the PCI interrupts that virtio-net uses.)"""
    mcopy = require_tool("mcopy")
    archive = gzip.decompress(require_file(LINUX / "initrd.gz", "run make linux-guest").read_bytes())
    initrd = work / "initrd.gz"
    initrd.write_bytes(gzip.compress(cpio_replace(archive, "init", INIT.read_bytes())))
    image = work / "user-net.img"
    shutil.copyfile(require_file(LINUX / "disk.img", "run make linux-guest"), image)
    cfg = work / "syslinux.cfg"
    cfg.write_text(f"DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL vmlinuz\n  INITRD initrd.gz\n"
                   f"  APPEND console=ttyS0 {append}\n")  # fmt: skip
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    for source, target in ((initrd, "::initrd.gz"), (cfg, "::syslinux.cfg")):
        subprocess.run([mcopy, "-o", "-i", f"{image}@@1M", str(source), target], check=True, env=env)
    return image


def user_net_config(work: Path, append: str, options: dict[str, str]) -> MachineConfig:
    return MachineConfig(
        machine="pc", memory_mb=128, serial=SerialConfig("none"), disks=[DiskConfig("ide0:0", net_disk(work, append))],
        nics=[NicConfig("ethernet0", "user", MAC, options=options)],
    )  # fmt: skip


class HostServer:
    """An HTTP server on 127.0.0.1 (a free port) that answers every GET with HOST_PAGE."""

    def __init__(self) -> None:
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                seen.append((self.client_address[0], self.path))
                self.send_response(200)
                self.send_header("Content-Length", str(len(HOST_PAGE)))
                self.end_headers()
                self.wfile.write(HOST_PAGE)

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def http_get(port: int, result: dict) -> None:
    """A host client: GET / from 127.0.0.1:port, the whole reply (the server closes)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=300) as client:
            client.sendall(b"GET / HTTP/1.0\r\nHost: guest\r\n\r\n")
            reply = b""
            while chunk := client.recv(65536):
                reply += chunk
        result["reply"] = reply
    except OSError as exc:
        result["error"] = str(exc)


@pytest.fixture(scope="module")
def user_net_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("linux-user-net")
    server = HostServer()
    config = user_net_config(work, f"hostport={server.port}", {"hostfwd": "tcp::0-:80"})
    machine = Machine(config)
    forward = machine.pci.backends[0].forwards[0]
    client: dict = {}
    state = {"thread": None, "typed": False}

    def poll() -> None:
        if state["thread"] is None and b"net-check: httpd ready" in machine.serial_transcript:
            state["thread"] = threading.Thread(target=http_get, args=(forward[2], client), daemon=True)
            state["thread"].start()
        if state["thread"] is not None and not state["thread"].is_alive() and not state["typed"]:
            state["typed"] = True
            machine.send("host-read-the-page\n")

    try:
        result = machine.run(max_instructions=MAX_INSTRUCTIONS, poll=poll)
        text = bytes(machine.serial_transcript).decode("latin-1").replace("\r\n", "\n")
    finally:
        machine.close()
        server.close()
    return {"result": result, "text": text, "client": client, "forward": forward, "seen": server.seen}


def check_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("net-check: ")]


@pytest.mark.slow
def test_udhcpc_gets_qemus_lease_and_the_gateway_answers_ping(user_net_run: dict) -> None:
    lines = check_lines(user_net_run["text"])
    assert user_net_run["result"].reason == "exit-port", user_net_run["text"][-3000:]
    assert "net-check: lease 10.0.2.15 mask 255.255.255.0 router 10.0.2.2 dns 10.0.2.3" in lines, lines
    assert "net-check: ping: 3 packets transmitted, 3 packets received, 0% packet loss" in lines, lines


@pytest.mark.slow
def test_guest_tcp_reaches_a_host_server_through_the_gateway(user_net_run: dict) -> None:
    assert f"net-check: from host: {HOST_PAGE.decode()}" in check_lines(user_net_run["text"])
    assert user_net_run["seen"] == [("127.0.0.1", "/from-guest")]


@pytest.mark.slow
def test_host_client_reads_the_guest_httpd_page_through_hostfwd(user_net_run: dict) -> None:
    proto, host, port, guest, guest_port = user_net_run["forward"]
    assert (proto, host, guest, guest_port) == ("tcp", "127.0.0.1", "10.0.2.15", 80) and port > 0
    reply = user_net_run["client"].get("reply", b"")
    assert reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n")[0], user_net_run["client"]
    assert reply.rstrip().endswith(GUEST_PAGE.encode())
    assert "net-check: console said host-read-the-page" in check_lines(user_net_run["text"])


@pytest.mark.slow
def test_lease_and_ping_runs_are_identical(tmp_path: Path) -> None:
    """No host socket is opened (no hostfwd, only the gateway): two runs give the same serial
    bytes, the same instruction count and the same pcap, byte for byte."""
    runs = []
    for run in range(2):
        config = user_net_config(tmp_path, "bench=lease", {})
        config.nics[0].pcap = tmp_path / f"run{run}.pcap"
        machine = Machine(config)
        try:
            result = machine.run(max_instructions=MAX_INSTRUCTIONS)
            runs.append((result.reason, machine.cpu.instructions, bytes(machine.serial_transcript)))
        finally:
            machine.close()
    assert runs[0][0] == "exit-port", runs[0][2][-3000:]
    assert b"net-check: ping: 3 packets transmitted, 3 packets received" in runs[0][2]
    assert runs[0] == runs[1]
    assert (tmp_path / "run0.pcap").read_bytes() == (tmp_path / "run1.pcap").read_bytes()


def vmm_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmm", *args], capture_output=True, text=True, timeout=300)


def test_cli_prints_the_port_a_hostfwd_got() -> None:
    toyos = require_file(ROOT / "guests" / "build" / "toyos.img")
    run = vmm_cli("run", str(toyos), "--machine", "pc", "--nic", "user,hostfwd=tcp::0-:80,hostfwd=udp::0-:53",
                  "--serial", "none", "--max-insns", "1000000")  # fmt: skip
    lines = re.findall(r"vmm: vm/ethernet0: hostfwd (tcp|udp) 127\.0\.0\.1:(\d+) -> 10\.0\.2\.15:(\d+)", run.stderr)
    assert [(proto, guest) for proto, _port, guest in lines] == [("tcp", "80"), ("udp", "53")], run.stderr
    assert all(int(port) > 0 for _proto, port, _guest in lines)


def test_cli_hostfwd_on_a_port_in_use_is_one_line() -> None:
    toyos = require_file(ROOT / "guests" / "build" / "toyos.img")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        run = vmm_cli("run", str(toyos), "--machine", "pc", "--nic", f"user,hostfwd=tcp::{port}-:22",
                      "--serial", "none", "--max-insns", "1000000")  # fmt: skip
    assert run.returncode != 0
    assert run.stderr.strip().splitlines() == [
        f"vmm: --nic user: hostfwd=tcp:127.0.0.1:{port}-10.0.2.15:22: cannot listen on 127.0.0.1:{port}: "
        "the host port is in use (another program, or another hostfwd, listens there)"
    ]
