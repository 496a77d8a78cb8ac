"""The ``vmm`` command line as a whole: every command loads and answers --help, --version."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vmm.cli.commands import COMMANDS


def vmm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmm", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_answers_help(command):
    proc = vmm(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: vmm {command} ")
    assert COMMANDS[command].help.split(";")[0] in " ".join(proc.stdout.split())


def test_top_help_lists_every_command_without_loading_them():
    code = (
        "import sys; from vmm.cli.main import build_parser; build_parser(['--help']).format_help(); "
        "print(sorted(m for m in sys.modules if m.startswith('vmm.')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(loaded) == ["vmm.cli", "vmm.cli.commands", "vmm.cli.main", "vmm.errors"]
    proc = vmm("--help")
    assert all(f"    {name}" in proc.stdout for name in COMMANDS)


def test_version_names_vmm_unicorn_and_the_bios():
    proc = vmm("--version")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("vmm 0.")
    assert lines[1] == "unicorn 2.1.4"
    assert lines[2].startswith("BIOS 0.1 (")  # the banner's version and the date at F000:FFF5


def test_a_broken_command_module_is_an_error_not_a_missing_command(tmp_path):
    # A command whose module fails to import must say so, not vanish from the CLI.
    code = (
        "import sys; sys.modules['vmm.disk.cli'] = None\n"
        "from vmm.cli import main\n"
        "sys.exit(main(['disk', 'info', 'x']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "ModuleNotFoundError" in proc.stderr and "vmm.disk.cli" in proc.stderr
