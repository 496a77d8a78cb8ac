"""The toy OS under QEMU, the reference PC: boot sector → stage 2 → kernel → init → shell.

These tests pin down what guests/ does on a machine everyone agrees is a PC, so that vmm's
own runs of the same images can be compared with them. QEMU runs with its default SeaBIOS
and only the devices vmm emulates; the serial console is QEMU's stdio.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import QEMU_DETERMINISTIC, ROOT, require_file, require_tool

pytestmark = pytest.mark.qemu

TOYOS_IMG = ROOT / "guests" / "build" / "toyos.img"
MULTIBOOT_ELF = ROOT / "guests" / "build" / "multiboot.elf"
MULTIBOOT_MODULE = ROOT / "guests" / "multiboot" / "module.txt"
EXPECTED = Path(__file__).resolve().parent / "expected"
PROMPT = "toyos$ "
TIMEOUT = 60.0  # generous: QEMU's TCG on a loaded CI machine
# The clock service is the one timing-dependent writer; its lines may land anywhere.
CLOCK_LINE = re.compile(r"clock: uptime \d+ s\n")
# init reports services it starts as they start: where a timer tick lands decides whether
# those lines come before or after the shell's prompt, and QEMU's disk requests complete
# on an I/O thread, so that varies from run to run; commands do not count on them.
INIT_LINE = re.compile(r"^init: started \w+ \(pid \d+\)\n", re.M)

QEMU_PC = [
    "-M",
    "pc",
    "-m",
    "64",
    "-display",
    "none",
    "-serial",
    "stdio",
    "-no-reboot",
    "-device",
    "isa-debug-exit,iobase=0xf4,iosize=0x04",
    *QEMU_DETERMINISTIC,
]


class SerialConsole:
    """QEMU with its serial port on stdin/stdout; a reader thread collects the output."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._output = bytearray()
        self._changed = threading.Condition()
        self._mark = 0  # expect() searches from here
        self.boot_log = ""  # everything up to the first shell prompt
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read1(4096):
            with self._changed:
                self._output += chunk
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def text(self) -> str:
        with self._changed:
            return self._output.decode(errors="replace").replace("\r\n", "\n")

    def expect(self, wanted: str, timeout: float = TIMEOUT) -> str:
        """Wait until `wanted` appears after the previous match; return the text up to it."""
        needle = wanted.replace("\n", "\r\n").encode()
        deadline = time.monotonic() + timeout
        with self._changed:
            while (at := self._output.find(needle, self._mark)) < 0:
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no {wanted!r} within {timeout} s; serial output:\n{self.text}")
                self._changed.wait(min(left, 0.5))
            start, self._mark = self._mark, at + len(needle)
            return self._output[start : self._mark].decode(errors="replace").replace("\r\n", "\n")

    def command(self, line: str) -> str:
        """Type a shell command; return what it printed before the next prompt."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        out = INIT_LINE.sub("", CLOCK_LINE.sub("", self.expect(PROMPT)))
        echoed = line + "\n"
        assert out.startswith(echoed), f"the console did not echo {line!r}: {out!r}"
        return out[len(echoed) : -len(PROMPT)]

    def wait(self, timeout: float = TIMEOUT) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


@pytest.fixture(scope="module")
def toyos() -> Iterator[SerialConsole]:
    qemu = require_tool("qemu-system-x86_64")
    require_file(TOYOS_IMG)
    console = SerialConsole([qemu, *QEMU_PC, "-drive", f"file={TOYOS_IMG},format=raw,if=ide"])
    try:
        console.boot_log = console.expect(PROMPT)
        yield console
    finally:
        console.close()


def test_boot_reaches_the_shell_through_every_stage(toyos: SerialConsole) -> None:
    lines = toyos.boot_log.splitlines()
    in_order = [
        "boot: loading stage2",
        "boot: stage2 running at 0x8000",
        "boot: E820 map: ",
        "boot: A20 on",
        "boot: loading kernel",
        "boot: entering protected mode",
        "boot: protected mode, building page tables",
        "boot: long mode, jumping to kernel at 0xffffffff80100000",
        "kernel: toyos 0.1 starting",
        'kernel: command line "name=toyos console=ttyS0"',
        "kernel: memory 63 MiB usable",
        "kernel: disk 0: ",
        "kernel: fs: 9 files",
        "kernel: starting /bin/init",
        "init: toyos ready on toyos",
        "init: started echo (pid 2)",
        "init: started clock (pid 3)",
        # (init's "started shell" line races the shell's banner: see INIT_LINE)
        "sh: toyos shell, type help for commands",
    ]
    position = 0
    for wanted in in_order:
        found = [i for i, line in enumerate(lines[position:], position) if line.startswith(wanted)]
        assert found, f"boot log lacks {wanted!r} after line {position}:\n{toyos.boot_log}"
        position = found[0] + 1
    assert lines[-1] == PROMPT


def test_echo(toyos: SerialConsole) -> None:
    assert toyos.command("echo hi") == "hi\n"


def test_ls_lists_the_file_system(toyos: SerialConsole) -> None:
    names = [line.split()[-1] for line in toyos.command("ls").splitlines()]
    assert names == [
        "/bin/init",
        "/bin/sh",
        "/bin/clock",
        "/bin/echod",
        "/bin/crash",
        "/bin/spin",
        "/etc/services",
        "/etc/motd",
        "/README",
    ]


def test_cat_prints_a_file(toyos: SerialConsole) -> None:
    motd = (ROOT / "guests" / "etc" / "motd").read_text()
    assert toyos.command("cat /etc/motd") == motd
    assert toyos.command("cat /nonexistent") == "cat: /nonexistent: no such file\n"


def test_echo_service_answers(toyos: SerialConsole) -> None:
    assert toyos.command("send hello service") == "echo: hello service\n"


def test_user_fault_kills_only_the_program(toyos: SerialConsole) -> None:
    out = toyos.command("crash")
    assert "crash: reading address 0x0\n" in out
    assert "fault: pid 5 (crash): page fault at 0x0 error 0x4 rip 0x4" in out
    assert out.endswith("sh: /bin/crash (pid 5) killed by exception 14\n")
    assert toyos.command("echo still alive") == "still alive\n"


def test_ps_shows_init_and_the_services(toyos: SerialConsole) -> None:
    rows = [line.split() for line in toyos.command("ps").splitlines()[1:]]
    names = {row[3]: (int(row[0]), int(row[1])) for row in rows}
    assert names["init"] == (1, 0)
    for service in ("echod", "clock", "sh"):
        assert names[service][1] == 1, f"{service} is not a child of init: {rows}"
    assert "crash" not in names


def test_timer_preempts_a_busy_program(toyos: SerialConsole) -> None:
    # spin never blocks for 6 s of guest uptime; the clock service still gets the CPU
    # (at least one 5 s boundary falls inside that window) before spin is done.
    assert toyos.proc.stdin is not None
    toyos.proc.stdin.write(b"run /bin/spin 6000\n")
    toyos.proc.stdin.flush()
    out = toyos.expect("spin: done\n")
    assert re.search(r"clock: uptime \d+ s\n", out), out
    toyos.expect(PROMPT)


def test_poweroff_exits_qemu_with_status_1(toyos: SerialConsole) -> None:
    assert toyos.proc.stdin is not None
    toyos.proc.stdin.write(b"poweroff\n")
    toyos.proc.stdin.flush()
    toyos.expect("kernel: power off\n")
    assert toyos.wait() == 1  # isa-debug-exit: (0 << 1) | 1


def test_reboot_resets_through_the_8042() -> None:
    # With -no-reboot QEMU exits (status 0) when the guest resets the machine.
    qemu = require_tool("qemu-system-x86_64")
    require_file(TOYOS_IMG)
    console = SerialConsole([qemu, *QEMU_PC, "-drive", f"file={TOYOS_IMG},format=raw,if=ide"])
    try:
        console.expect(PROMPT)
        assert console.proc.stdin is not None
        console.proc.stdin.write(b"reboot\n")
        console.proc.stdin.flush()
        console.expect("kernel: reboot\n")
        assert console.wait() == 0
    finally:
        console.close()


def test_multiboot_kernel_prints_its_boot_info() -> None:
    qemu = require_tool("qemu-system-x86_64")
    require_file(MULTIBOOT_ELF)
    require_file(MULTIBOOT_MODULE)
    # Relative paths: QEMU passes "<kernel path> <append>" as the Multiboot command line
    # and the -initrd argument as the module string, so they are part of the output.
    result = subprocess.run(
        [
            qemu,
            *QEMU_PC,
            "-kernel",
            "guests/build/multiboot.elf",
            "-append",
            "hello multiboot",
            "-initrd",
            "guests/multiboot/module.txt arg1",
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
    )
    expected = (EXPECTED / "multiboot.txt").read_text()
    assert result.stdout.decode().replace("\r\n", "\n") == expected
    assert result.returncode == 33  # the kernel writes 0x10: (0x10 << 1) | 1
