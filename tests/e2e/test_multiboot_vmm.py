"""The Multiboot test kernel on vmm (`vmm run --kernel ELF --append S --initrd F`), beside
`qemu-system-x86_64 -kernel` with the same arguments.

The kernel prints the boot information it was handed and exits through port F4h with
0x10 (status 33). The memory lines (mem_lower/mem_upper and the mmap entries) come from
each loader's own map: QEMU's from the firmware's E820 table, vmm's from
vmm.boot.multiboot.memory_map, so they are checked against vmm's map, and every other
line against QEMU.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.conftest import QEMU_DETERMINISTIC, ROOT, require_file, require_tool
from vmm.boot.multiboot import memory_map
from vmm.config import MachineConfig, SerialConfig
from vmm.machine import Machine

KERNEL = "guests/build/multiboot.elf"  # relative to ROOT: the paths are part of the output
MODULE = "guests/multiboot/module.txt"
APPEND = "hello multiboot"
EXPECTED = Path(__file__).resolve().parent / "expected"
EXIT_STATUS = 33  # the kernel writes 0x10: (0x10 << 1) | 1
MEMORY_MB = 64
TIMEOUT = 60
MEMORY_LINE = re.compile(r"multiboot: (mem_lower|mmap \d+:) ")
QEMU_ISAPC = ["-M", "isapc", "-cpu", "qemu64,-apic", "-m", str(MEMORY_MB), "-display", "none", "-serial", "stdio",
              "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", *QEMU_DETERMINISTIC]  # fmt: skip

# QEMU (hw/i386/multiboot.c) passes "<kernel path> <append>" as the command line and the
# whole -initrd item ("<path> <arguments>") as the module string; vmm does the same.


def vmm_run(*args: str) -> tuple[int, str]:
    """`vmm run` in ROOT; returns (exit status, serial output with LF line ends)."""
    vmm = Path(sys.executable).with_name("vmm")
    result = subprocess.run([str(vmm), "run", *args], cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=TIMEOUT)  # fmt: skip
    assert not result.stderr.strip(), result.stderr.decode(errors="replace")
    return result.returncode, result.stdout.decode().replace("\r\n", "\n")


def qemu_run(*args: str) -> tuple[int, str]:
    qemu = require_tool("qemu-system-x86_64")
    result = subprocess.run([qemu, *QEMU_ISAPC, *args], cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=TIMEOUT)  # fmt: skip
    return result.returncode, result.stdout.decode().replace("\r\n", "\n")


def without_memory_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not MEMORY_LINE.match(line)]


def memory_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if MEMORY_LINE.match(line)]


@pytest.fixture(scope="module")
def vmm_output() -> tuple[int, str]:
    require_file(ROOT / KERNEL)
    return vmm_run("--kernel", KERNEL, "--append", APPEND, "--initrd", MODULE)


def test_kernel_gets_the_boot_information_and_exits(vmm_output: tuple[int, str]) -> None:
    status, text = vmm_output
    lines = text.splitlines()
    assert status == EXIT_STATUS
    assert lines[0] == "multiboot: magic 0x2badb002"
    assert "multiboot: modules 1" in lines
    size = (ROOT / MODULE).stat().st_size
    assert any(re.fullmatch(rf'multiboot: module 0 string ".*", size {size}, page aligned yes', x) for x in lines)
    assert 'multiboot: module 0 text "hello from the multiboot module"' in lines
    assert lines[-1] == "multiboot: done, exiting with 0x10"
    assert re.search(rf'^multiboot: cmdline ".*multiboot\.elf {APPEND}"$', text, re.MULTILINE)


def test_memory_lines_describe_vmms_memory_map(vmm_output: tuple[int, str]) -> None:
    _, text = vmm_output
    entries = memory_map(MEMORY_MB << 20)
    mmap = [f"multiboot: mmap {i}: base {base:#x} length {length:#x} type {kind}"
            for i, (base, length, kind) in enumerate(entries)]  # fmt: skip
    assert memory_lines(text)[1:] == mmap
    upper = (MEMORY_MB << 10) - 1024
    assert re.search(rf"^multiboot: mem_lower \d+ KiB, mem_upper {upper} KiB$", text, re.MULTILINE)


def test_mem_lower_agrees_with_the_memory_map(vmm_output: tuple[int, str]) -> None:
    _, text = vmm_output
    base, length, kind = memory_map(MEMORY_MB << 20)[0]
    assert (base, kind) == (0, 1)
    assert f"multiboot: mem_lower {length >> 10} KiB," in text


def test_the_kernel_stage_starts_at_the_elf_entry() -> None:
    with open(require_file(ROOT / KERNEL), "rb") as f:
        entry = ELFFile(f).header["e_entry"]
    config = MachineConfig(kernel=ROOT / KERNEL, append=APPEND, initrd=ROOT / MODULE, serial=SerialConfig("none"))
    machine = Machine(config)
    try:
        result = machine.run(max_instructions=10_000_000)
        assert (result.reason, result.status) == ("exit-port", EXIT_STATUS)
        assert [(t.stage, t.instructions, t.pc) for t in machine.stages.timeline] == [("kernel", 0, entry)]
    finally:
        machine.close()


@pytest.mark.qemu
def test_output_matches_qemu_except_the_memory_map(vmm_output: tuple[int, str]) -> None:
    qemu_status, qemu_text = qemu_run("-kernel", KERNEL, "-append", APPEND, "-initrd", MODULE)
    status, text = vmm_output
    assert without_memory_lines(text) == without_memory_lines(qemu_text)
    assert status == qemu_status == EXIT_STATUS


def test_module_arguments_as_qemu_takes_them() -> None:
    require_file(ROOT / KERNEL)
    status, text = vmm_run("--kernel", KERNEL, "--append", APPEND, "--initrd", f"{MODULE} arg1")
    expected = (EXPECTED / "multiboot.txt").read_text()  # recorded under QEMU with these arguments
    assert without_memory_lines(text) == without_memory_lines(expected)
    assert status == EXIT_STATUS
