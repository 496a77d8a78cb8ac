"""The toy OS on vmm: vmm's BIOS → boot sector → stage 2 → kernel → init → shell.

The same boot as tests/e2e/test_toyos_qemu.py, on vmm: the shell is driven over COM1,
the boot stages are read from the machine, and the serial output up to the prompt is
compared with QEMU's isapc (an ISA PC without PCI or local APIC) booting the same image
with the same BIOS. Virtual time is derived from instructions, so two runs are equal to
the instruction; only the clock service's ``clock: uptime N s`` lines depend on time.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.conftest import QEMU_DETERMINISTIC, QEMU_NO_FLOPPY, ROOT, require_file, require_tool
from tests.e2e.test_toyos_qemu import CLOCK_LINE, PROMPT, SerialConsole
from vmm.config import DiskConfig, MachineConfig, SerialConfig
from vmm.machine import Machine, MachineExit

TOYOS_IMG = ROOT / "guests" / "build" / "toyos.img"
KERNEL_ELF = ROOT / "guests" / "build" / "kernel.elf"
BIOS = ROOT / "firmware" / "build" / "bios.bin"
BOOT_INSTRUCTIONS = 50_000_000  # the prompt comes after about 2.3 million
COMMAND_INSTRUCTIONS = 20_000_000
WALL_LIMIT = 60.0  # seconds; a safety net only, a boot takes well under one
FOUND = "found"  # the MachineExit reason of a run stopped by VmmConsole.expect
QEMU_ISAPC = ["-M", "isapc", "-cpu", "qemu64,-apic", "-bios", str(BIOS), "-m", "64", "-display", "none",
              "-serial", "stdio", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
              *QEMU_DETERMINISTIC, *QEMU_NO_FLOPPY]  # fmt: skip
# init's report of each service it starts: where it lands among the new process's own
# output depends on where a timer tick falls, and QEMU's disk requests complete on an
# I/O thread, so that place differs from run to run under QEMU (and from vmm's).
SERVICE_LINE = re.compile(r"init: started \w+ \(pid \d+\)\n")
LAST_SERVICE = "init: started shell (pid 4)\n"  # the last line of /etc/services


def kernel_entry() -> int:
    with open(require_file(KERNEL_ELF), "rb") as f:
        return ELFFile(f).header["e_entry"]


class VmmConsole:
    """A toy OS machine whose COM1 output is searched as it is written: ``expect`` runs
    the machine until the wanted text has been printed and stops it at that byte."""

    def __init__(self, stage_entries: dict[str, int] | None = None) -> None:
        require_file(TOYOS_IMG)
        require_file(BIOS, "run make -C firmware")
        config = MachineConfig(bios=BIOS, disks=[DiskConfig("ide0:0", TOYOS_IMG)], serial=SerialConfig("none"),
                               stage_entries=stage_entries or {})  # fmt: skip
        self.machine = Machine(config, serial_out=self._on_serial)
        self._wanted = b""
        self._mark = 0  # expect() searches from here
        self.boot_log = ""

    def _on_serial(self, _byte: bytes) -> None:
        transcript = self.machine.serial_transcript
        if self._wanted and transcript.endswith(self._wanted) and len(transcript) - len(self._wanted) >= self._mark:
            self._wanted = b""
            self.machine.request_stop(FOUND)

    @property
    def text(self) -> str:
        return self.machine.serial_transcript.decode(errors="replace").replace("\r\n", "\n")

    def expect(self, wanted: str, max_instructions: int = COMMAND_INSTRUCTIONS) -> str:
        """Run until ``wanted`` is printed after the previous match; return the text up to it."""
        needle = wanted.replace("\n", "\r\n").encode()
        transcript = self.machine.serial_transcript
        at = transcript.find(needle, self._mark)
        if at < 0:
            self._wanted = needle
            result = self.run(max_instructions)
            self._wanted = b""
            assert result.reason == FOUND, f"no {wanted!r} ({result}); serial output:\n{self.text}"
            at = len(transcript) - len(needle)
        start, self._mark = self._mark, at + len(needle)
        return transcript[start : self._mark].decode(errors="replace").replace("\r\n", "\n")

    def run(self, max_instructions: int) -> MachineExit:
        return self.machine.run(max_instructions=max_instructions, timeout=WALL_LIMIT)

    def command(self, line: str) -> str:
        """Type a shell command; return what it printed before the next prompt."""
        self.machine.send(line + "\r")
        out = CLOCK_LINE.sub("", self.expect(PROMPT))
        echoed = line + "\n"
        assert out.startswith(echoed), f"the console did not echo {line!r}: {out!r}"
        return out[len(echoed) : -len(PROMPT)]

    def close(self) -> None:
        self.machine.close()


def boot_to_prompt(stage_entries: dict[str, int] | None = None) -> VmmConsole:
    console = VmmConsole(stage_entries)
    console.boot_log = console.expect(PROMPT, BOOT_INSTRUCTIONS)
    return console


@pytest.fixture(scope="module")
def toyos() -> Iterator[VmmConsole]:
    console = boot_to_prompt({"kernel": kernel_entry()})
    try:
        yield console
    finally:
        console.close()


def test_boot_reaches_the_shell_through_every_stage(toyos: VmmConsole) -> None:
    lines = toyos.boot_log.splitlines()
    in_order = [
        "vmm BIOS 0.1",
        "Booting from hard disk...",
        "boot: loading stage2",
        "boot: stage2 running at 0x8000",
        "boot: E820 map: 5 entries",
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
        "init: started shell (pid 4)",
        "sh: toyos shell, type help for commands",
    ]
    position = 0
    for wanted in in_order:
        found = [i for i, line in enumerate(lines[position:], position) if line.startswith(wanted)]
        assert found, f"boot log lacks {wanted!r} after line {position}:\n{toyos.boot_log}"
        position = found[0] + 1
    assert lines[-1] == PROMPT


def test_stages_run_in_order_from_reset_to_init(toyos: VmmConsole) -> None:
    timeline = toyos.machine.stages.timeline
    assert [t.stage for t in timeline] == ["firmware", "bootloader", "kernel", "init"]
    assert [t.pc for t in timeline[:3]] == [0xFFFFFFF0, 0x7C00, kernel_entry()]
    assert timeline[0].instructions == 0
    counts = [t.instructions for t in timeline]
    times = [t.time_ns for t in timeline]
    assert counts == sorted(counts) and len(set(counts)) == 4, timeline
    assert times == sorted(times) and len(set(times)) == 4, timeline


def test_echo(toyos: VmmConsole) -> None:
    assert toyos.command("echo hi") == "hi\n"


def test_ls_lists_the_file_system(toyos: VmmConsole) -> None:
    names = [line.split()[-1] for line in toyos.command("ls").splitlines()]
    assert names == ["/bin/init", "/bin/sh", "/bin/clock", "/bin/echod", "/bin/crash",
                     "/bin/spin", "/etc/services", "/etc/motd", "/README"]  # fmt: skip


def test_cat_prints_a_file(toyos: VmmConsole) -> None:
    assert toyos.command("cat /etc/motd") == (ROOT / "guests" / "etc" / "motd").read_text()
    assert toyos.command("cat /nonexistent") == "cat: /nonexistent: no such file\n"


def test_echo_service_answers(toyos: VmmConsole) -> None:
    assert toyos.command("send hello service") == "echo: hello service\n"


def test_user_fault_kills_only_the_program(toyos: VmmConsole) -> None:
    out = toyos.command("crash")
    assert "crash: reading address 0x0\n" in out
    fault = re.search(r"^fault: pid (\d+) \(crash\): page fault at 0x0 error 0x4 rip 0x4", out, re.MULTILINE)
    assert fault, out
    assert out.endswith(f"sh: /bin/crash (pid {fault[1]}) killed by exception 14\n")
    assert toyos.command("echo still alive") == "still alive\n"


def test_ps_shows_init_and_the_services(toyos: VmmConsole) -> None:
    rows = [line.split() for line in toyos.command("ps").splitlines()[1:]]
    names = {row[3]: (int(row[0]), int(row[1])) for row in rows}
    assert names["init"] == (1, 0)
    for service in ("echod", "clock", "sh"):
        assert names[service][1] == 1, f"{service} is not a child of init: {rows}"
    assert "crash" not in names


def test_poweroff_ends_the_run_with_status_1(toyos: VmmConsole) -> None:
    toyos.machine.send("poweroff\r")
    result = toyos.run(COMMAND_INSTRUCTIONS)
    assert (result.reason, result.status) == ("exit-port", 1)
    assert toyos.text.endswith("kernel: power off\n")


def test_two_boots_are_identical_to_the_instruction() -> None:
    first, second = boot_to_prompt(), boot_to_prompt()
    try:
        assert first.machine.serial_transcript == second.machine.serial_transcript
        assert first.machine.cpu.instructions == second.machine.cpu.instructions
        assert first.machine.clock.now_ns() == second.machine.clock.now_ns()
        assert first.machine.stages.timeline == second.machine.stages.timeline
    finally:
        first.close()
        second.close()


def stage_lines(stderr: str) -> list[tuple[str, int]]:
    found = re.findall(r"^vmm: stage (\w+) +at insn +([\d,]+) ", stderr, re.MULTILINE)
    return [(stage, int(count.replace(",", ""))) for stage, count in found]


def test_cli_lists_the_stages_and_poweroff_typed_on_stdin_exits_1(toyos: VmmConsole) -> None:
    vmm = Path(sys.executable).with_name("vmm")
    console = SerialConsole([str(vmm), "run", str(TOYOS_IMG), "--stages"])
    try:
        console.expect(PROMPT)
        assert console.proc.stdin is not None
        console.proc.stdin.write(b"poweroff\r")
        console.proc.stdin.flush()
        console.expect("kernel: power off\n")
        assert console.wait() == 1
        assert console.proc.stderr is not None
        stderr = console.proc.stderr.read().decode()
    finally:
        console.close()
    # Without a kernel entry the monitor knows, the kernel stage is not reported; the
    # counts are those of the API's run (the kernel breakpoint costs no instruction).
    api = {t.stage: t.instructions for t in toyos.machine.stages.timeline}
    assert stage_lines(stderr) == [(stage, api[stage]) for stage in ("firmware", "bootloader", "init")]


@pytest.mark.qemu
def test_serial_output_to_the_prompt_matches_qemu_isapc(tmp_path: Path) -> None:
    qemu = require_tool("qemu-system-x86_64")
    image = tmp_path / "toyos.img"
    shutil.copyfile(require_file(TOYOS_IMG), image)
    console = SerialConsole([qemu, *QEMU_ISAPC, "-drive", f"file={image},format=raw,if=ide"])
    try:
        # The boot is over when the prompt and init's last service line are both out,
        # in whichever order the scheduler printed them.
        qemu_log = console.expect(PROMPT)
        if LAST_SERVICE not in qemu_log:
            qemu_log += console.expect(LAST_SERVICE)
    finally:
        console.close()
    vmm = boot_to_prompt()
    try:
        vmm_log = vmm.boot_log
    finally:
        vmm.close()
    assert LAST_SERVICE in vmm_log
    # Compared per writer, exactly: init's service lines in their order, and everything
    # else byte for byte in its order. The clock service's lines depend on time.
    vmm_text, qemu_text = CLOCK_LINE.sub("", vmm_log), CLOCK_LINE.sub("", qemu_log)
    assert SERVICE_LINE.findall(vmm_text) == SERVICE_LINE.findall(qemu_text)
    assert SERVICE_LINE.sub("", vmm_text) == SERVICE_LINE.sub("", qemu_text)
