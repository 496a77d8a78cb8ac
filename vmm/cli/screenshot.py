"""``vmm screenshot``: boot to a sensible point, print the VGA text screen, save it as PNG.

Where it stops: with ``--at STAGE``, when that boot stage starts; with ``--max-insns N``,
after N instructions; otherwise the first time the guest idles (HLT with interrupts on:
what a BIOS waiting for a key, or a kernel with nothing to run, does), or after
``DEFAULT_LIMIT`` instructions if it never does. Only the screen goes to stdout (its
trailing blank lines left out); where it stopped is one line on stderr.
"""

from __future__ import annotations

import argparse
import sys

from vmm.cli.machine_flags import add_machine_flags, config_from_args, make_machine, output_path, write_output
from vmm.config import SerialConfig
from vmm.sizes import parse_count

DEFAULT_LIMIT = 200_000_000
STAGE_NAMES = ("firmware", "bootloader", "kernel", "init")


def add_arguments(name: str, shot: argparse.ArgumentParser) -> None:
    add_machine_flags(shot)
    shot.add_argument("--at", metavar="STAGE", choices=STAGE_NAMES,
                      help="stop when this boot stage starts (firmware, bootloader, kernel, init)")  # fmt: skip
    shot.add_argument("--max-insns", metavar="N",
                      help="stop after N instructions, e.g. 50M (default: when the guest first idles, "
                           f"at most {DEFAULT_LIMIT // 1_000_000}M)")  # fmt: skip
    shot.add_argument("--out", metavar="PNG", required=True, help="where to write the PNG")
    shot.set_defaults(func=cmd_screenshot)


def cmd_screenshot(args: argparse.Namespace) -> int:
    from vmm.cli.progress import Progress
    from vmm.exits import Stops

    limit = parse_count(args.max_insns, "--max-insns") if args.max_insns else DEFAULT_LIMIT
    out = output_path(args.out, "--out")
    config, _ = config_from_args(args)
    config.serial = SerialConfig("none")
    machine = make_machine(config)
    until_idle = args.max_insns is None and args.at is None

    with Progress("booting", unit="insn") as progress:

        def after_slice() -> None:
            progress(machine.cpu.instructions, limit)

        stops = Stops(stages=frozenset([args.at]) if args.at else frozenset(), idle=until_idle,
                      after_slice=after_slice)  # fmt: skip
        result = machine.run(max_instructions=limit, stops=stops)
    width, height = write_output(out, "--out", machine.vga.screenshot_png)
    if machine.vga.is_graphics():
        print(f"(a graphics mode: the {width}x{height} picture is in {args.out})")
    else:
        screen = machine.screen_text().rstrip("\n").split("\n")
        while screen and not screen[-1].strip():
            screen.pop()
        print("\n".join(screen))
    why = {"idle": "the guest idles (waits for input or a timer)", "stage": f"stage {args.at} starts",
           "limit": f"{limit:,} instructions ran"}.get(result.reason, result.detail or result.reason)  # fmt: skip
    print(f"vmm: {args.out}: the screen at instruction {machine.cpu.instructions:,}, when {why}", file=sys.stderr)
    return 0
