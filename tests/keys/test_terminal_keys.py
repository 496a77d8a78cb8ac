"""Keys from a terminal to the guest's keyboard: escape sequences and key names become PS/2
scan codes, and in a real terminal (tmux) arrow keys typed into `vmm run` move a cursor in a
boot sector that reads INT 16h."""

from __future__ import annotations

import os
import selectors
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_file, require_tool
from tests.floppy.build import boot_sector
from vmm.errors import ConfigError
from vmm.keys import KeyRouter, TerminalKeys, key_scancodes

BIOS = ROOT / "firmware" / "build" / "bios.bin"
WALL_LIMIT = 60.0  # seconds: a safety net only


@pytest.mark.parametrize(
    ("typed", "codes"),
    [
        (b"a", "1e 9e"),
        (b"A", "2a 1e 9e aa"),
        (b"\x03", "1d 2e ae 9d"),  # Ctrl-C
        (b"\r", "1c 9c"),
        (b"\x7f", "0e 8e"),  # Backspace
        (b"\x1b", "01 81"),  # Esc on its own
        (b"\x1b[A", "e0 48 e0 c8"),  # Up
        (b"\x1bOD", "e0 4b e0 cb"),  # Left, application cursor mode
        (b"\x1bOP", "3b bb"),  # F1
        (b"\x1b[15~", "3f bf"),  # F5
        (b"\x1b[24~", "58 d8"),  # F12
        (b"\x1b[3~", "e0 53 e0 d3"),  # Delete
        (b"\x1b[1;5C", "1d e0 4d e0 cd 9d"),  # Ctrl+Right
        (b"\x1b[[A", "3b bb"),  # F1 on the Linux console
        (b"\x1bx", "38 2d ad b8"),  # Alt+x
        (b"\x1b[Z", "2a 0f 8f aa"),  # Shift+Tab
    ],
)
def test_terminal_bytes_become_scan_codes(typed: bytes, codes: str) -> None:
    assert TerminalKeys().feed(typed).hex(" ") == codes


def test_a_sequence_cut_between_two_reads_waits_for_its_end() -> None:
    keys = TerminalKeys()
    assert keys.feed(b"\x1b[1") == b""
    assert keys.feed(b"5~") == bytes.fromhex("3f bf")


@pytest.mark.parametrize(
    ("name", "codes"),
    [("Up", "e0 48 e0 c8"), ("F10", "44 c4"), ("Escape", "01 81"), ("C-c", "1d 2e ae 9d"),
     ("M-x", "38 2d ad b8"), ("C-M-Delete", "1d 38 e0 53 e0 d3 b8 9d"), ("Enter", "1c 9c"), ("Z", "2a 2c ac aa")],
)  # fmt: skip
def test_key_names_as_tmux_spells_them(name: str, codes: str) -> None:
    assert key_scancodes(name).hex(" ") == codes


def test_unknown_key_name_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown key 'Hyper'"):
        key_scancodes("Hyper")


class FakeUart:
    receive_interrupt_enabled = False


class FakeMachine:
    def __init__(self) -> None:
        self.uart, self.serial, self.scancodes = FakeUart(), bytearray(), bytearray()
        self.kbc = self

    def send(self, data: bytes) -> None:
        self.serial += data

    def key_scancodes(self, codes: bytes) -> None:
        self.scancodes += codes


def test_auto_routing_follows_the_uart_receive_interrupt() -> None:
    machine = FakeMachine()
    router = KeyRouter(machine)
    router.type(b"\x1b[A")
    assert (bytes(machine.scancodes), bytes(machine.serial)) == (bytes.fromhex("e0 48 e0 c8"), b"")
    machine.uart.receive_interrupt_enabled = True  # a serial console driver took COM1
    router.type(b"\x1b[A")
    assert bytes(machine.serial) == b"\x1b[A"
    KeyRouter(machine, "ps2").type(b"q")
    assert machine.scancodes.endswith(bytes.fromhex("10 90"))


def read_until(fd: int, marker: bytes, seen: bytearray, deadline: float) -> None:
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while marker not in seen and time.monotonic() < deadline:
            if selector.select(timeout=max(0.0, deadline - time.monotonic())):
                chunk = os.read(fd, 4096)
                if not chunk:
                    return
                seen += chunk
    assert marker in seen, bytes(seen)


def test_arrow_keys_typed_into_vmm_run_move_the_cursor(tmp_path: Path) -> None:
    tmux = require_tool("tmux")
    require_file(BIOS, "run make -C firmware")
    image = tmp_path / "cursor.bin"
    image.write_bytes(boot_sector("../keys/cursor"))
    out = tmp_path / "serial.fifo"
    os.mkfifo(out)
    server = ["-S", str(tmp_path / "tmux.sock"), "-f", "/dev/null"]  # a tmux server of this test's own
    command = (f"{shlex.quote(sys.executable)} -m vmm run {shlex.quote(str(image))} --bios {shlex.quote(str(BIOS))}"
               f" --timeout {WALL_LIMIT:g} > {shlex.quote(str(out))}")  # fmt: skip
    subprocess.run([tmux, *server, "new-session", "-d", "-x", "100", "-y", "30", command], check=True,
                   env={**os.environ, "TERM": "xterm-256color"})  # fmt: skip
    fd = os.open(out, os.O_RDONLY | os.O_NONBLOCK)
    seen = bytearray()
    try:
        deadline = time.monotonic() + WALL_LIMIT
        read_until(fd, b"cursor: ready\r\n", seen, deadline)
        subprocess.run([tmux, *server, "send-keys", "Up", "Up", "Left", "Right", "Right", "Right", "Down", "Escape"],
                       check=True)  # fmt: skip
        read_until(fd, b"key 011B at 11,42\r\n", seen, deadline)
    finally:
        os.close(fd)
        subprocess.run([tmux, *server, "kill-server"], capture_output=True)
    moves = [line for line in bytes(seen).decode().split("\r\n") if line.startswith("key ")]
    assert moves[:8] == [
        "key 4800 at 11,40", "key 4800 at 10,40", "key 4B00 at 10,39", "key 4D00 at 10,40",
        "key 4D00 at 10,41", "key 4D00 at 10,42", "key 5000 at 11,42", "key 011B at 11,42",
    ]  # fmt: skip


def test_send_keys_in_an_expectation_file(tmp_path: Path) -> None:
    from vmm.testing.runner import run_spec
    from vmm.testing.spec import load_spec

    require_file(BIOS, "run make -C firmware")
    (tmp_path / "cursor.img").write_bytes(boot_sector("../keys/cursor").ljust(1440 * 1024, b"\0"))
    spec = tmp_path / "cursor.vmm.toml"
    spec.write_text(
        '[machine]\nfloppy = "cursor.img"\n'
        "[[step]]\nexpect = 'cursor: ready'\nwithin = \"50M\"\n"
        '[[step]]\nsend-keys = ["Right", "Down", "Down", "x"]\n'
        "[[step]]\nexpect = 'key 2D78 at 14,41'\nwithin = \"50M\"\n"
        '[[step]]\nsend-keys = "Escape"\n'
        '[[step]]\nexit = 1\nwithin = "50M"\n'
    )
    result = run_spec(load_spec(spec), tmp_path / "out")
    assert result.outcome == "passed", result


def test_send_keys_with_no_key_is_refused(tmp_path: Path) -> None:
    from vmm.testing.spec import load_spec

    spec = tmp_path / "bad.vmm.toml"
    spec.write_text('[machine]\nimage = "x.img"\n[[step]]\nsend-keys = ["Up", "\\u00e9"]\n')
    (tmp_path / "x.img").write_bytes(bytes(512))
    with pytest.raises(ConfigError, match="neither a key name nor text"):
        load_spec(spec)
