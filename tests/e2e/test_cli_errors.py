"""`vmm run` as a user meets it: one clear line and a non-zero status for each bad input,
the triple-fault report, and the exit statuses the README promises."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, require_file
from tests.cpu.rom import assemble_rom, rom_source

HELLO = ROOT / "firmware" / "build" / "hello.img"


def vmm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmm", *args], capture_output=True, text=True, timeout=120)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vmm: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["run", "--bios", "/nonexistent/rom.bin"], 2, "/nonexistent/rom.bin: no such file"),
        (["run", "/nonexistent/disk.img", "--bios", "{rom}"], 1, "/nonexistent/disk.img: disk image not found"),
        (["run", "--bios", "{small}"], 1, "a BIOS ROM must be 64, 128, 192 or 256 KiB, not 1000 bytes"),
        (["run", "--bios", "{rom}", "--mem", "lots"], 2, "--mem: 'lots' is not a size"),
        (["run", "--bios", "{rom}", "--mem", "8G"], 2, "memory size 8192 MB is out of range"),
        (["run", "--bios", "{rom}", "--serial", "tty:x"], 2, "--serial: expected stdio, none"),
        (["run", "--bios", "{rom}", "--max-insns", "many"], 2, "--max-insns: 'many' is not a count"),
        (["run", "--bios", "{rom}", "--max-insns", "-5"], 2, "--max-insns: -5 is negative"),
        (["run", "--bios", "{rom}", "--max-insns", "9999999999999T"], 2, "--max-insns: 9999999999999T is too large"),
        (["run", "--bios", "{rom}", "--mem=-64M"], 2, "--mem: -64M is negative"),
        (["run", "--kernel", "{small}"], 2, "neither a Linux bzImage (no 'HdrS' setup header at 0x202) nor"),
    ],
)
def test_bad_input_gets_one_clear_line(tmp_path, args, status, message):
    rom = tmp_path / "rom.bin"
    rom.write_bytes(assemble_rom(rom_source("realmode")))
    small = tmp_path / "small.bin"
    small.write_bytes(bytes(1000))
    proc = vmm(*[a.format(rom=rom, small=small) for a in args])
    assert proc.returncode == status
    assert message in one_error_line(proc)


def test_bad_flag_is_an_argparse_error():
    proc = vmm("run", "--no-such-flag")
    assert proc.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in proc.stderr


def test_triple_fault_stops_with_the_chain_of_faults(tmp_path):
    rom = tmp_path / "triple.bin"
    rom.write_bytes(assemble_rom(rom_source("triple")))
    proc = vmm("run", "--bios", str(rom))
    assert proc.returncode == 3
    assert proc.stdout == "triple: loading an empty IVT and raising int 3\n"
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("vmm: triple fault after ")
    assert "vmm:   INT 03h (software interrupt, #BP breakpoint) returning to pc 0xf0011" in lines[1]
    assert "#GP general protection error 0x1a" in lines[2]
    assert "#DF double fault error 0x0" in lines[3]


def test_triple_fault_can_reset_instead(tmp_path):
    rom = tmp_path / "triple.bin"
    rom.write_bytes(assemble_rom(rom_source("triple")))
    proc = vmm("run", "--bios", str(rom), "--on-triple-fault", "reset", "--max-insns", "5000")
    assert proc.returncode == 124  # it kept resetting until the limit
    assert proc.stdout.count("triple: loading an empty IVT") >= 2


def test_realtime_clock_still_boots_the_demo():
    proc = vmm("run", str(require_file(HELLO)), "--realtime")
    assert proc.returncode == 1
    assert "Hello from the boot sector!" in proc.stdout


def test_log_unclaimed_names_what_the_guest_probed(tmp_path):
    rom = tmp_path / "probe.bin"
    rom.write_bytes(
        assemble_rom(
            """
        in al, 0x2F0                   # nothing at this port: reads 0xFF
        mov dx, 0x3F8
        out dx, al
        xor ax, ax
        mov ds, ax
        mov eax, 0x8000000             # 128 MiB: beyond the 64 MiB of RAM
        mov ebx, [eax]
        mov dword ptr [eax + 16], ebx
        mov al, bl
        out dx, al
        mov al, 0x10
        out 0xF4, al
        hlt
    """.replace("in al, 0x2F0", "mov dx, 0x2F0\n        in al, dx")
        )
    )
    proc = subprocess.run([sys.executable, "-m", "vmm", "run", "--bios", str(rom), "--log-unclaimed"],
                          capture_output=True, timeout=60)  # fmt: skip
    assert proc.returncode == 33
    assert proc.stdout == b"\xff\xff"  # unbacked port and memory both read all ones
    err = proc.stderr.decode()
    assert "vmm: unclaimed ports: 1 accesses: in 0x2f0 x1" in err
    assert "vmm: unclaimed memory: 2 accesses; last: read 0x8000000, write 0x8000010" in err


def test_screenshot_prints_the_screen_and_writes_a_png(tmp_path):
    png = tmp_path / "screen.png"
    proc = vmm("screenshot", str(require_file(HELLO)), "--out", str(png), "--max-insns", "100000")
    assert proc.returncode == 0, proc.stderr
    screen = proc.stdout.splitlines()
    assert screen[0] == "vmm BIOS 0.1"
    assert "Hello from the boot sector!" in screen
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(data[16:20], "big") == 640 and int.from_bytes(data[20:24], "big") == 400


def test_piped_input_waits_until_the_guest_reads_com1():
    """The toy OS clears its UART's receive FIFO twice while it boots (stage 2 and the
    kernel's console driver): input piped at start-up must wait for the guest to listen."""
    image = require_file(ROOT / "guests" / "build" / "toyos.img")
    proc = subprocess.run([sys.executable, "-m", "vmm", "run", str(image)], input=b"echo piped\npoweroff\n",
                          capture_output=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert b"toyos$ piped\r\n" in proc.stdout
    assert b"kernel: power off" in proc.stdout


def test_no_bootable_disk_names_what_the_bios_tried_and_exits_4():
    proc = vmm("run", str(ROOT / "README.md"))
    assert proc.returncode == 4
    assert proc.stdout.endswith("No bootable disk\n")
    assert one_error_line(proc) == (
        # README.md is under 64 KiB: vmm puts it in drive A:, as a tutorial boot sector.
        "vmm: no bootable disk (boot order floppy,hdd): the BIOS tried floppy0 README.md "
        "(no boot signature 55 AA at byte 510 of sector 0)"
    )


def test_a_quiet_bios_that_finds_nothing_still_says_so(tmp_path):
    bundle = tmp_path / "empty"
    assert vmm("create", str(bundle), "--disk-size", "1M").returncode == 0
    assert vmm("nvram", "set", str(bundle), "bios.quiet", "TRUE").returncode == 0
    proc = vmm("run", str(bundle))
    assert proc.returncode == 4
    assert proc.stdout == "No bootable disk\n"  # quiet: no banner, no "Booting from hard disk..."
    assert one_error_line(proc) == (
        "vmm: no bootable disk (boot order hdd,cdrom; this PC boots no cdrom): the BIOS tried "
        "ide0:0 empty.vmdk (no boot signature 55 AA at byte 510 of sector 0)"
    )


def test_wait_without_gdb_is_refused():
    proc = vmm("run", "--wait", str(require_file(HELLO)))
    assert proc.returncode == 2
    assert one_error_line(proc) == "vmm: --wait waits for a debugger: it needs --gdb [HOST:]PORT"


def test_serial_stdio_with_stdin_from_dev_null_runs_the_guest_to_its_end():
    # Standard input that is not a terminal is typed to the guest; /dev/null types nothing.
    proc = subprocess.run([sys.executable, "-m", "vmm", "run", str(require_file(HELLO))], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1  # the demo's own exit status
    assert proc.stdout and "Traceback" not in proc.stderr
