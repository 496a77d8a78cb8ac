"""Debian's gdb, in batch mode, against `vmm run --gdb`: what gdb prints is the test.

One vmm process serves a whole class session: gdb connects at the reset vector, sees
16-bit code at 0x7c00, follows the guest into protected and long mode, stops in the
kernel with its ELF (symbols, source lines, 64-bit registers), `bt`, `finish`, detaches;
a second gdb connects, continues and is killed in the middle of the `continue`; a third
connects to the stopped guest, interrupts a `continue` with Ctrl-C and kills vmm. vmm
stays alive from the first connection to the last `kill`.
"""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, require_file, require_tool
from vmm.debug.symbols import Symbols

HELPER = ROOT / "vmm/debug/gdb/vmm.py"
MARK = "vmm-test: continuing"  # gdb -batch does not print "Continuing."
CONTINUE = [f"echo {MARK}\\n", "continue"]


def start_vmm_with_gdb(*args: str) -> tuple[subprocess.Popen, int]:
    """`vmm run ... --gdb 127.0.0.1:0`: the kernel picks a free port and vmm names it on
    stderr once it listens, so gdb connects without racing other users of the port."""
    vmm = subprocess.Popen([sys.executable, "-m", "vmm", "run", *args, "--gdb", "127.0.0.1:0"],
                           stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    line = vmm.stderr.readline()
    assert line.startswith("vmm: gdb stub on tcp 127.0.0.1:"), line + vmm.stderr.read()
    return vmm, int(line.rsplit(":", 1)[1])


def gdb_argv(gdb: str, port: int, commands: list[str], elf=None) -> list[str]:
    argv = [gdb, "-nx", "-batch"] + ([str(elf)] if elf else [])
    for command in [
        "set pagination off",
        "set confirm off",
        "set style enabled off",
        "set width 0",
        f"target remote 127.0.0.1:{port}",
        *commands,
    ]:
        argv += ["-ex", command]
    return argv


def run_gdb(gdb: str, port: int, commands: list[str], elf=None) -> str:
    result = subprocess.run(gdb_argv(gdb, port, commands, elf), capture_output=True, text=True, timeout=300)
    return result.stdout + result.stderr


class GdbOnTerminal:
    """gdb with its output on a pseudo-terminal (so "Continuing." arrives as gdb prints
    it, not when a pipe buffer fills); ``expect`` reads until a text appears."""

    def __init__(self, argv: list[str]) -> None:
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
        os.close(slave)
        self.fd = master
        self.text = ""

    def expect(self, needle: str) -> str:
        while needle not in self.text:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # EIO: gdb exited and the terminal closed
                chunk = b""
            if not chunk:
                raise AssertionError(f"gdb never printed {needle!r}:\n{self.text}")
            self.text += chunk.decode(errors="replace").replace("\r\n", "\n")
        return self.text

    def finish(self) -> str:
        try:
            self.expect("\x00never")
        except AssertionError:
            pass
        self.proc.wait(timeout=120)
        os.close(self.fd)
        return self.text


def wait_for_growth(path, size: int) -> None:
    """Until the guest has written more to COM1 than ``size`` bytes: it is running. A
    generous bound on the number of looks, not a timed assert."""
    for _ in range(6000):
        if path.stat().st_size > size:
            return
        time.sleep(0.05)
    raise AssertionError(f"the guest wrote nothing more to {path}")


def test_one_vmm_serves_a_whole_class_session_across_all_modes(tmp_path):
    gdb = require_tool("gdb")
    image = require_file(ROOT / "guests/build/toyos.img", "make -C firmware && make -C guests")
    elf = require_file(ROOT / "guests/build/kernel.elf", "make -C guests")
    com1 = tmp_path / "com1.txt"
    vmm, port = start_vmm_with_gdb(str(image), "--serial", f"file:{com1}", "--stage-kernel", str(elf), "--wait")
    try:
        # Session 1: reset -> 0x7c00 (16-bit) -> protected mode -> kmain (64-bit, ELF) -> detach.
        out = run_gdb(gdb, port, [
            f"source {HELPER}", "vmm-mode", "p/x $pc", "info registers cs", "x/1i $cs*16+$pc",
            "break *0x7c00", "continue", "vmm-mode", "x/3i $pc",
            "delete", "monitor break mode protected", "continue", "stepi 3", "vmm-mode", "monitor status",
            "monitor delete 1", "vmm-mode long", "break cpu_init", "continue", "vmm-mode",
            "info registers rip rsp cr0 efer",
            "bt", "finish", "info source", "detach"], elf=elf)  # fmt: skip
        assert vmm.poll() is None, out
        assert "vmm: 16-bit registers and disassembly" in out, out
        assert "cs             0xf000" in out and "$1 = 0xfff0" in out, out
        assert "0xffff0:\tljmp   $0xf000," in out, out  # the reset vector's far jump, in 16-bit
        assert "Breakpoint 1, 0x00007c00 in ?? ()" in out, out
        assert "=> 0x7c00:\tcli\n   0x7c01:\tljmp   $0x0,$0x7c06\n   0x7c06:\txor    %ax,%ax" in out, out
        assert "vmm: 32-bit registers and disassembly" in out and "mode protected (32-bit)" in out, out
        assert "vmm: 64-bit registers and disassembly" in out, out
        assert "Breakpoint 2, cpu_init () at kernel/cpu.c:" in out, out
        assert re.search(r"rip            (0xffffffff8[0-9a-f]{7})  \1 <cpu_init>", out), out
        assert "rsp            0xffffffff8" in out, out
        assert "#0  cpu_init () at kernel/cpu.c:" in out and "in kmain (" in out and "_start" in out, out
        assert re.search(r"\nkmain \(bootinfo_phys=<optimized out>\) at kernel/main.c:\d+\n", out), out  # finish
        assert "kernel/main.c" in out, out
        assert "[Inferior 1 (Remote target) detached]" in out, out

        # Session 2: the guest ran on after the detach; gdb stops it, continues, and is
        # killed in the middle of the continue (once the guest is seen running).
        gdb2 = GdbOnTerminal(gdb_argv(gdb, port, ["info registers rip", *CONTINUE]))
        seen = gdb2.expect(MARK)
        assert "rip            0xffffffff8" in seen, seen
        wait_for_growth(com1, com1.stat().st_size)
        assert vmm.poll() is None, seen
        gdb2.proc.kill()
        gdb2.finish()
        assert vmm.poll() is None

        # Session 3: gdb finds the guest stopped where the dead gdb left it; Ctrl-C
        # interrupts a continue; `kill` ends vmm.
        gdb3 = GdbOnTerminal(gdb_argv(gdb, port, ["monitor stages", *CONTINUE, "info registers rip",
                                                  "monitor status", "kill"]))  # fmt: skip
        gdb3.expect(MARK)
        wait_for_growth(com1, com1.stat().st_size)
        gdb3.proc.send_signal(signal.SIGINT)
        out = gdb3.finish()
        assert "stage kernel" in out and "stage init" in out, out
        assert "Program received signal SIGINT" in out, out
        assert "[Inferior 1 (Remote target) killed]" in out, out
    except BaseException:
        vmm.kill()
        raise
    finally:
        vmm.wait(timeout=120)
    assert vmm.returncode == 0
    assert "vmm: killed by gdb after" in vmm.stderr.read()


def test_gdb_without_the_helper_sees_the_fixed_x86_64_layout_at_reset():
    """Plain gdb (no ELF, no helper): 64-bit registers from reset on, linear breakpoints,
    `monitor` runs vmm's commands, and a 64-bit breakpoint address is not truncated."""
    gdb = require_tool("gdb")
    image = require_file(ROOT / "guests/build/toyos.img", "make -C firmware && make -C guests")
    elf = require_file(ROOT / "guests/build/kernel.elf", "make -C guests")
    kmain = Symbols.from_elf(elf).lookup("kmain")
    assert kmain >> 32 == 0xFFFFFFFF  # a 64-bit address gdb must not truncate
    vmm, port = start_vmm_with_gdb(str(image), "--serial", "none", "--wait")
    try:
        out = run_gdb(gdb, port, ["info registers rip", "print $fs_base", f"break *{kmain:#x}",
                                  "continue", "info registers rip", "monitor stages", "kill"])  # fmt: skip
    except BaseException:
        vmm.kill()
        raise
    finally:
        vmm.wait(timeout=120)
    assert "rip            0xfff0" in out, out
    assert "$1 = 0" in out, out
    assert f"Breakpoint 1 at {kmain:#x}" in out, out
    assert f"Breakpoint 1, {kmain:#018x} in ?? ()" in out, out
    assert "stage kernel" not in out or "stage bootloader" in out, out
