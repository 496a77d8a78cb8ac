"""The Debian Linux guest (`make linux-guest`, guests/linux) on vmm: direct boot with
`vmm run --kernel vmlinuz --initrd initrd.gz --append console=ttyS0`, the same guest through
syslinux on vmm's BIOS, the serial output beside QEMU's, and malformed kernels.

Each boot is about 6 G instructions (half a minute of host CPU or more): the boots are
marked `slow` (CI runs them) and each is done once per module.
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_file, require_tool

LINUX = ROOT / "guests" / "build" / "linux"
APPEND = "console=ttyS0"
INIT_LINE = re.compile(r"vmm-linux-guest: init running as pid 1 on Linux \S+")
DONE_LINE = "vmm-linux-guest: done, exiting with status 0"
EXIT_STATUS = 1  # init writes 0 to port 0xF4: (0 << 1) | 1, as QEMU's isa-debug-exit
TIMEOUT = 900
STAGE_LINE = re.compile(r"vmm: stage (\w+) +at insn +([\d,]+) .* pc=(0x[0-9a-f]+)")
# Plain TCG, not -icount: QEMU 7.2's icount mode intermittently double-faults this kernel at
# a CMPXCHG16B in kmem_cache_alloc_lru (seen here); the lines whose order or value depends
# on timing are the ones listed below instead.
QEMU_ISAPC = ["-M", "isapc", "-cpu", "qemu64,-apic", "-m", "128", "-display", "none", "-no-reboot",
              "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]  # fmt: skip
TIMESTAMP = re.compile(r"^\[ *\d+\.\d+\] ")

# Kernel log lines that differ between vmm and QEMU (-M isapc -cpu qemu64,-apic, SeaBIOS
# through QEMU's linuxboot option ROM), each for a named reason. They are left out of the
# comparison; every other line up to init must be the same, in the same order.
DIFFERENT_FOR_A_REASON = {
    "CPU model: vmm's Unicorn core is a Haswell-like Intel CPU, QEMU's qemu64 an AMD-like one "
    "(features, errata, mitigations, PAT, MTRRs, PMU, TLB sizes, idle routine, FPU state format)": (
        r"Disabled fast string operations|Disabled$|x86/PAT: |CPU MTRRs all blank|Last level [di]TLB entries"
        r"|Speculative Store Bypass|MDS: |MMIO Stale Data|SRBDS: |active return thunk|ITS: |x86/fpu: "
        r"|Freeing SMP alternatives memory|Performance Events|no APIC, boot with|no hardware sampling"
        r"|PMU not available|signal: max sigframe size|process: using AMD E400|intel_pstate: "
        r"|Kernel/User page tables isolation|x86/mm: Checking user space page tables|AGP: "
    ),
    "firmware tables: SeaBIOS builds SMBIOS, an MP table (2 CPUs, 1 hot-pluggable) and reserves the "
    "HyperTransport hole in E820; vmm's direct boot has no BIOS tables": (
        r"BIOS-e820: \[mem 0x000000fd00000000|SMBIOS |DMI|found SMP MP-table|Intel MultiProcessor"
        r"|MPTABLE: |IOAPIC\[0\]|BIOS bug, MP table|\.\.\. disabling SMP|smpboot: |setup_percpu: |percpu: "
        r"|SLUB: |rcu: .*nr_cpu_ids|NR_IRQS: |cblist_init_generic: "
    ),
    "clocks: the TSC rate each machine measures against the PIT, the BogoMIPS derived from it, "
    "whether the kernel trusts the TSC (QEMU's, with a second possible CPU, finds the TSCs "
    "unsynchronized; vmm's keeps it stable), and the real-time clock (QEMU: the host's date; "
    "vmm: its fixed virtual epoch)": (
        r"tsc: |clocksource: |Calibrating delay loop|Total of 1 processors activated|rtc_cmos rtc_cmos: setting"
        r"|audit: type=2000|sched_clock: Marking stable|Unstable clock detected, switching default tracing clock"
        r"|If you want to keep using the local clock|  \"trace_clock=local\"$|on the kernel command line$"
    ),
    "memory: the BIOS tables above and the per-CPU areas of a second CPU take a few KiB": (
        r"Memory: \d+K/\d+K available"
    ),
    "printed by other kernel threads, at a time that depends on each machine's timing": (
        r"random: crng init done|Freeing initrd memory|Trying to unpack rootfs|input: AT Translated Set 2 keyboard"
        r"|serio: i8042 AUX port|x86/mm: Checked W\+X mappings"
    ),
}
DIFFERENT = re.compile("|".join(f"(?:{pattern})" for pattern in DIFFERENT_FOR_A_REASON.values()))


def vmm_run(*args: str) -> subprocess.CompletedProcess:
    vmm = Path(sys.executable).with_name("vmm")
    return subprocess.run([str(vmm), "run", *args], cwd=LINUX, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=TIMEOUT)  # fmt: skip


def serial_lines(stdout: bytes) -> list[str]:
    return stdout.decode(errors="replace").replace("\r\n", "\n").splitlines()


def up_to_init(lines: list[str]) -> list[str]:
    """The kernel's lines up to the init line, without timestamps and named differences."""
    end = next(i for i, line in enumerate(lines) if INIT_LINE.fullmatch(line))
    kept = [TIMESTAMP.sub("", line).rstrip() for line in lines[:end]]
    return [line for line in kept if not DIFFERENT.match(line)]


def stages(stderr: bytes) -> list[tuple[str, int, int]]:
    found = [STAGE_LINE.match(line) for line in stderr.decode().splitlines()]
    return [(m[1], int(m[2].replace(",", "")), int(m[3], 16)) for m in found if m]


@pytest.fixture(scope="module")
def direct_boot() -> subprocess.CompletedProcess:
    require_file(LINUX / "vmlinuz", "run make linux-guest")
    return vmm_run("--kernel", "vmlinuz", "--initrd", "initrd.gz", "--append", APPEND, "--stages")


@pytest.mark.slow
def test_direct_boot_reaches_init_and_exits_with_the_guest_status(direct_boot) -> None:
    lines = serial_lines(direct_boot.stdout)
    assert direct_boot.returncode == EXIT_STATUS, direct_boot.stderr.decode()
    assert any(INIT_LINE.fullmatch(line) for line in lines), lines[-20:]
    assert f"vmm-linux-guest: command line: {APPEND}" in lines
    assert "vmm-linux-guest: loaded virtio_pci" in lines
    assert "vmm-linux-guest: sum of 1..100 = 5050" in lines
    assert lines[-1] == DONE_LINE


@pytest.mark.slow
def test_stages_show_kernel_then_init_with_counts(direct_boot) -> None:
    timeline = stages(direct_boot.stderr)
    assert [stage for stage, _, _ in timeline] == ["kernel", "init"]
    (_, kernel_at, kernel_pc), (_, init_at, init_pc) = timeline
    assert (kernel_at, kernel_pc) == (0, 0x100200)  # the 64-bit entry: load address + 0x200
    assert init_at > 1_000_000_000 and init_pc < 1 << 47  # init starts in user space
    assert re.search(rb"vmm: guest exit status 1 after [\d,]+ instructions", direct_boot.stderr)


@pytest.mark.slow
@pytest.mark.qemu
def test_serial_output_up_to_init_matches_qemu(direct_boot, tmp_path) -> None:
    qemu = require_tool("qemu-system-x86_64")
    # The serial line goes to a file: `-serial stdio` with stdin at end of file keeps QEMU's
    # main loop polling it, which under -icount starves the virtual CPU.
    serial = tmp_path / "qemu-serial.txt"
    result = subprocess.run([qemu, *QEMU_ISAPC, "-serial", f"file:{serial}", "-kernel", "vmlinuz", "-initrd",
                             "initrd.gz", "-append", APPEND],
                            cwd=LINUX, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)  # fmt: skip
    assert result.returncode == EXIT_STATUS, result.stderr.decode()
    theirs = up_to_init(serial_lines(serial.read_bytes()))
    ours = up_to_init(serial_lines(direct_boot.stdout))
    assert len(ours) > 150  # most of the boot log is compared, not filtered away
    assert ours == theirs


@pytest.mark.slow
def test_the_syslinux_disk_bundle_reaches_the_same_init_line(direct_boot) -> None:
    # The bundle `make linux-guest` makes of disk.img: 128 MiB, the kernel stage at 0x100000.
    bundle = require_file(LINUX / "debian" / "debian.vmx", "run make linux-guest")
    result = vmm_run(str(bundle), "--stages")
    lines = serial_lines(result.stdout)
    direct_init = next(line for line in serial_lines(direct_boot.stdout) if INIT_LINE.fullmatch(line))
    assert result.returncode == EXIT_STATUS, result.stderr.decode()
    assert direct_init in lines
    assert "vmm-linux-guest: command line: BOOT_IMAGE=vmlinuz console=ttyS0 initrd=initrd.gz" in lines
    assert lines[-1] == DONE_LINE
    # vmm's BIOS, syslinux's MBR at 0x7C00, the kernel's 32-bit entry (code32_start), init.
    assert [stage for stage, _, _ in stages(result.stderr)] == ["firmware", "bootloader", "kernel", "init"]


# ---- malformed kernels: one clear line, exit status 2, nothing runs ----------------------------


def patched(tmp_path: Path, offset: int, data: bytes, length: int | None = None) -> Path:
    image = bytearray(require_file(LINUX / "vmlinuz", "run make linux-guest").read_bytes())
    image[offset : offset + len(data)] = data
    path = tmp_path / "bad-vmlinuz"
    path.write_bytes(bytes(image[:length]))
    return path


def one_error_line(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "vmm", "run", *args], cwd=LINUX, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("vmm: ") and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    return lines[0]


def test_truncated_setup_is_refused(tmp_path) -> None:
    kernel = patched(tmp_path, 0, b"", length=0x1000)
    assert "truncated Linux kernel: the setup code is" in one_error_line("--kernel", str(kernel))


def test_truncated_kernel_is_refused(tmp_path) -> None:
    size = (LINUX / "vmlinuz").stat().st_size if (LINUX / "vmlinuz").exists() else 0
    kernel = patched(tmp_path, 0, b"", length=size - 4096)
    assert "truncated Linux kernel: the header promises" in one_error_line("--kernel", str(kernel))


def test_bad_boot_flag_is_refused(tmp_path) -> None:
    kernel = patched(tmp_path, 0x1FE, b"\0\0")
    assert "bad Linux boot sector magic 0x0000 at 0x1fe (expected 0xaa55)" in one_error_line("--kernel", str(kernel))


def test_a_file_that_is_no_kernel_is_refused(tmp_path) -> None:
    kernel = patched(tmp_path, 0x202, b"HdrX")
    line = one_error_line("--kernel", str(kernel))
    assert "neither a Linux bzImage (no 'HdrS' setup header at 0x202) nor a Multiboot kernel" in line


def test_too_old_boot_protocol_is_refused(tmp_path) -> None:
    kernel = patched(tmp_path, 0x206, struct.pack("<H", 0x0208))
    assert "Linux boot protocol 2.08 is too old (vmm needs 2.12 or later" in one_error_line("--kernel", str(kernel))


def test_initrd_above_initrd_addr_max_is_refused(tmp_path) -> None:
    kernel = patched(tmp_path, 0x22C, struct.pack("<I", 0x01FFFFFF))  # 32 MiB: below the kernel's own end
    line = one_error_line("--kernel", str(kernel), "--initrd", "initrd.gz")
    assert "is larger than initrd_addr_max (0x1ffffff) allows above the kernel's end" in line


def test_too_long_command_line_is_refused() -> None:
    require_file(LINUX / "vmlinuz", "run make linux-guest")
    line = one_error_line("--kernel", "vmlinuz", "--append", "x" * 5000)
    assert "the command line is 5000 bytes; this kernel accepts at most 2047 (cmdline_size)" in line


def test_too_little_memory_is_said_before_running() -> None:
    require_file(LINUX / "vmlinuz", "run make linux-guest")
    line = one_error_line("--kernel", "vmlinuz", "--initrd", "initrd.gz", "--mem", "64M")
    assert re.search(r"kernel and initrd need 8\d MiB of RAM .* but the machine has 64 MiB; use --mem 8\dM", line)


# ---- memtest86+ through the same boot protocol ----------------------------------------------

MEMTEST_INSTRUCTIONS = 500_000_000  # past the set-up screen, into the first test of pass 1


@pytest.mark.slow
def test_memtest86plus_runs_its_first_pass() -> None:
    from vmm.config import MachineConfig, SerialConfig
    from vmm.machine import Machine

    image = require_file(LINUX / "memtest86+x64.bin", "run make linux-guest")
    machine = Machine(MachineConfig(kernel=image, memory_mb=64, serial=SerialConfig("none")))
    try:
        result = machine.run(max_instructions=MEMTEST_INSTRUCTIONS)
        screen = machine.screen_text()
    finally:
        machine.close()
    assert result.reason == "limit", result
    lines = [line.rstrip() for line in screen.splitlines()]
    assert lines[0].startswith("      Memtest86+ v6.10"), screen
    assert "Memory  :   64MB" in screen
    assert re.search(r"Test #\d+ +\[", screen), screen  # a test of the first pass is running
    assert re.search(r"Status: Testing", screen), screen
    assert re.search(r"Pass:  0 +Errors: 0", screen), screen
