"""`vmm step` on a terminal, driven through tmux at 80x24: what the screen shows is the
test (tmux capture-pane), polled for the expected text with a generous bound, never a
timed assert."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from tests.conftest import ROOT, require_file, require_tool

LOOKS = 3000  # captures before giving up (0.1 s apart: a generous bound, not a timing)


class Tmux:
    def __init__(self, tmux: str, tmp_path, command: str) -> None:
        self.tmux = tmux
        self.socket = str(tmp_path / "tmux.sock")  # a tmux server of the test's own
        env = dict(os.environ, HOME=str(tmp_path), XDG_STATE_HOME=str(tmp_path / "state"), TERM="xterm-256color")
        self.run("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "80", "-y", "24", command, env=env)
        self.run("set-option", "-t", "t", "remain-on-exit", "on")

    def run(self, *args: str, env=None) -> str:
        result = subprocess.run([self.tmux, "-S", self.socket, *args], capture_output=True, text=True, env=env,
                                timeout=60)  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "t", *keys)

    def capture(self) -> str:
        return self.run("capture-pane", "-p", "-t", "t")

    def wait_for(self, pattern: str) -> str:
        for _ in range(LOOKS):
            screen = self.capture()
            if re.search(pattern, screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"the screen never showed {pattern!r}:\n{screen}")

    def close(self) -> None:
        subprocess.run([self.tmux, "-S", self.socket, "kill-server"], capture_output=True, timeout=60)


def test_step_screen_at_80x24(tmp_path):
    tmux_path = require_tool("tmux")
    image = require_file(ROOT / "guests/build/toyos.img", "make -C firmware && make -C guests")
    elf = require_file(ROOT / "guests/build/kernel.elf", "make -C guests")
    command = f"{sys.executable} -m vmm step {image} --symbols {elf} --stage-kernel {elf}"
    tmux = Tmux(tmux_path, tmp_path, f"cd {ROOT} && {command}")
    try:
        tmux.wait_for(r"\(vmm\)")
        tmux.keys("break *0x7c00", "Enter")
        tmux.wait_for(r"breakpoint #1 at 0x7c00")
        tmux.keys("c", "Enter")
        screen = tmux.wait_for(r"=> 0000:7c00")
        assert "[bootloader]" in screen
        tmux.keys("c", "Enter")  # nothing else to stop at: the guest runs until Ctrl-C
        tmux.wait_for(r"running\.\.\. Ctrl-C stops")
        tmux.wait_for(r"clock: uptime \d+ s")  # the guest's output, in the serial pane
        tmux.keys("C-c")
        screen = tmux.wait_for(r"interrupted \(Ctrl-C\) at insn [\d,]+")
        screen = tmux.wait_for(r"\(vmm\)\s*\Z")  # tmux drops trailing blanks
        tmux.keys("Up")
        screen = tmux.wait_for(r"\(vmm\) c\s*\Z")
        lines = screen.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        assert any(line.startswith("=> ") for line in lines), screen  # code, with pc marked
        assert re.search(r"rax [0-9a-f]{16}. rcx [0-9a-f]{16}. rdx [0-9a-f]{16}", screen), screen  # one line each
        assert re.search(r"rip [0-9a-f]{16}", screen), screen
        assert sum("| insn " in line for line in lines) == 1, screen  # one status line
        assert "--- serial (COM1) ---" in screen and "clock: uptime" in screen, screen
        assert (tmp_path / "state/vmm/step_history").read_text().count("\n+c\n") >= 1
        tmux.keys("C-u", "C-d")
        for _ in range(LOOKS):
            # tmux marks the pane dead when the program's terminal closes; the exit status can
            # still be empty then (it is filled in when tmux reaps the process), or stay so.
            dead = tmux.run("list-panes", "-t", "t", "-F", "#{pane_dead} #{pane_dead_status}").split()
            if dead[:1] == ["1"]:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("vmm step did not quit on Ctrl-D:\n" + tmux.capture())
        assert dead[1:] in ([], ["0"]), f"vmm step exited with status {dead[1]}"
    finally:
        tmux.close()
