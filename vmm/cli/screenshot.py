"""``vmm screenshot``: boot, stop at a sensible point, print the screen and save it as PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from vmm.cli.machine_flags import add_machine_flags, config_from_args, make_machine
from vmm.config import SerialConfig
from vmm.sizes import parse_count


def add_arguments(name: str, shot: argparse.ArgumentParser) -> None:
    add_machine_flags(shot)
    shot.add_argument("--max-insns", metavar="N", default="200000000", help="instructions to run first")
    shot.add_argument("--out", metavar="PNG", required=True, help="where to write the PNG")
    shot.set_defaults(func=cmd_screenshot)


def cmd_screenshot(args: argparse.Namespace) -> int:
    max_insns = parse_count(args.max_insns, "--max-insns")
    config, _ = config_from_args(args)
    config.serial = SerialConfig("none")
    machine = make_machine(config)
    machine.run(max_instructions=max_insns)
    width, height = machine.vga.screenshot_png(Path(args.out))
    if machine.vga.is_graphics():
        print(f"(a graphics mode: the {width}x{height} picture is in {args.out})")
    else:
        print(machine.screen_text())
    return 0
