"""``vmm``'s entry point and its one error path.

Every error a user can cause is a VmmError, reported here as one line on stderr,
``vmm: WHAT``, with its exit status (2 for a bad flag or setting, 1 otherwise); a guest
that writes the exit port sets vmm's exit status (see vmm.cli.run for the whole table).
Anything else that escapes is a bug in vmm and keeps its traceback.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys

from vmm.cli.commands import add_commands, chosen_command
from vmm.errors import VmmError

DESCRIPTION = "An x86 PC emulator and minimal VMM: boots guest images from the reset vector."


class _VersionAction(argparse.Action):
    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the versions of vmm, unicorn and the BIOS")

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from vmm.cli.version import version_text

        print(version_text())
        parser.exit()


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser for ``argv`` (the flags of the command it names, the help of all)."""
    parser = argparse.ArgumentParser(prog="vmm", description=DESCRIPTION)
    parser.add_argument("--version", action=_VersionAction)
    add_commands(parser, chosen_command(sys.argv[1:] if argv is None else argv))
    return parser


def started() -> None:
    """The command is set up: the objects made so far live as long as the process (they
    are frozen out of the collector's passes), and cyclic garbage is collected again."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def main(argv: list[str] | None = None) -> int:
    # Start-up makes long-lived objects (modules, classes, the parser, a machine) and next
    # to no cyclic garbage: the collector's passes over them cost `vmm run` ~3 ms of a
    # 0.1 s toy OS boot and found nothing. A command whose set-up is heavy says so
    # (set_defaults(gc_paused_setup=True)) and calls started() once set up; any other
    # command runs with the collector on.
    gc.disable()
    try:
        args = build_parser(argv).parse_args(argv)
        if not getattr(args, "gc_paused_setup", False):
            started()
        return args.func(args)
    except VmmError as exc:
        print(f"vmm: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("vmm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `vmm ... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        started()
