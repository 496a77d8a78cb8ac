"""Every ``vmm`` command: its one-line help, and the module that adds its flags and runs it.

A command module has ``add_arguments(name, parser)``, which adds the command's flags and
``parser.set_defaults(func=...)``; ``func(args)`` returns the exit status and lets VmmError
through to :mod:`vmm.cli.main`. Only the module of the command being run is imported, so
``vmm --help`` and each command start without loading the machine, the disks or the tests.
"""

from __future__ import annotations

import argparse
import importlib


class Command:
    """A command's module (it has ``add_arguments(name, parser)``) and its one-line help."""

    __slots__ = ("module", "help")

    def __init__(self, module: str, help: str) -> None:
        self.module = module
        self.help = help


COMMANDS: dict[str, Command] = {
    "run": Command("vmm.cli.run", "boot a machine; guest serial on stdout, exit status from the guest"),
    "screenshot": Command("vmm.cli.screenshot",
                          "boot, run N instructions, save the VGA text screen (text and PNG)"),
    "step": Command("vmm.cli.debugger", "debug a boot interactively: step, break, back, regs, disas"),
    "trace": Command("vmm.cli.debugger", "write an instruction trace (address, bytes, disassembly, changes)"),
    "test": Command("vmm.testing.cli", "run expectation files (NAME.vmm.toml) against guest images"),
    "merge-junit": Command("vmm.testing.cli", "merge JUnit XML files (e.g. of sharded CI jobs) into one"),
    "create": Command("vmm.bundle.cli", "make a VM bundle NAME/ (NAME.vmx, NAME.nvram, NAME.vmdk)"),
    "show": Command("vmm.bundle.cli", "print a bundle's settings and what vmm makes of each"),
    "set": Command("vmm.bundle.cli", "change one .vmx setting (the whole bundle is checked before it is saved)"),
    "nvram": Command("vmm.bundle.cli", "show or change a bundle's firmware settings (.nvram)"),
    "snapshot": Command("vmm.snapshot.cli", "take, list, revert, delete or check snapshots of a VM bundle"),
    "ctl": Command("vmm.control.cli", "send a command to a running VM's control channel (status, pause, ...)"),
    "disk": Command("vmm.disk.cli", "create, inspect, convert, check and commit disk images"),
    "switch": Command("vmm.net.switch_cli", "serve a virtual Ethernet switch with 802.1Q VLANs (show: its state)"),
    "lab": Command("vmm.lab.cli", "run several VMs and switches in one process on one virtual clock (LAB.toml)"),
}  # fmt: skip


def chosen_command(argv: list[str]) -> str | None:
    """The command named on a command line: its first word that is not an option."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def add_commands(parser: argparse.ArgumentParser, chosen: str | None) -> None:
    """Add the command ``chosen`` to ``parser``, with its flags (its module imported), or
    every command, without flags, when none is chosen (``vmm --help``, a misspelt one)."""
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        if chosen is None or name == chosen:
            p = sub.add_parser(name, help=command.help, description=command.help)
        if name == chosen:
            importlib.import_module(command.module).add_arguments(name, p)
