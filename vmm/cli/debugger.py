"""``vmm step`` (the interactive debugger) and ``vmm trace`` (an instruction trace)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vmm.cli.machine_flags import add_machine_flags, config_from_args, make_machine, output_path
from vmm.config import SerialConfig
from vmm.errors import ConfigError, VmmError
from vmm.sizes import parse_count


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    add_machine_flags(parser)
    if name == "step":
        add_step_flags(parser)
    else:
        add_trace_flags(parser)


def add_step_flags(step: argparse.ArgumentParser) -> None:
    step.add_argument("--symbols", metavar="ELF[@BIAS]", action="append", default=[],
                      help="symbols and source lines from an ELF file, its addresses plus BIAS; repeatable "
                           "(boot sector, stage 2, kernel). The kernel stage is --stage-kernel's")  # fmt: skip
    step.add_argument(
        "--stage-kernel",
        metavar="ADDR|ELF",
        help="where the kernel stage starts (an address or an ELF's entry); named, never inferred",
    )
    step.add_argument("--script", metavar="FILE", help="run the debugger commands in FILE and print the transcript")
    step.add_argument("--checkpoint-every", metavar="N", default="200K",
                      help="instructions between checkpoints for `back` (default 200K; 0: off)")  # fmt: skip
    step.set_defaults(func=cmd_step)


def add_trace_flags(trace: argparse.ArgumentParser) -> None:
    trace.add_argument("--until", metavar="STAGE|ADDR", required=True, help="stop at this stage or address")
    trace.add_argument("--from-stage", metavar="STAGE", help="trace only from this stage on")
    trace.add_argument("--max-insns", metavar="N", default="5M", help="give up after N instructions (default 5M)")
    trace.add_argument("--out", metavar="FILE", required=True, help="where to write the trace")
    trace.set_defaults(func=cmd_trace)


def open_debugger(args: argparse.Namespace, checkpoint_every: int | None):
    from vmm.debug.engine import Debugger
    from vmm.debug.symbols import Symbols

    config, _ = config_from_args(args)
    config.serial = SerialConfig("none")
    symbols = Symbols.load(getattr(args, "symbols", None) or [])
    for note in symbols.notes if symbols else []:
        print(f"vmm: --symbols {note}", file=sys.stderr)
    machine = make_machine(config)
    return Debugger(machine, symbols, checkpoint_every=checkpoint_every or None)


def cmd_step(args: argparse.Namespace) -> int:
    from vmm.debug.commands import Commands
    from vmm.debug.screen import interactive

    dbg = open_debugger(args, parse_count(args.checkpoint_every, "--checkpoint-every"))
    try:
        if args.script:
            try:
                lines = Path(args.script).read_text().splitlines()
            except OSError as exc:
                raise ConfigError(f"{args.script}: cannot read script ({exc.strerror})") from None
            return run_script(Commands(dbg), lines, sys.stdout)
        return interactive(dbg)
    finally:
        dbg.machine.close()


def run_script(commands, lines: list[str], out) -> int:
    """Each command echoed after the prompt, then its output: a transcript to read or diff."""
    status = 0
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        out.write(f"(vmm) {line.strip()}\n")
        try:
            text = commands.run(line)
        except VmmError as exc:
            text = f"error: {exc}"
            status = 1
        if text:
            out.write(text + "\n")
        if commands.quit:
            break
    out.flush()
    return status


def cmd_trace(args: argparse.Namespace) -> int:
    from vmm.debug.stages import STAGES
    from vmm.debug.trace import write_trace

    limit = parse_count(args.max_insns, "--max-insns")
    out_path = output_path(args.out, "--out")
    dbg = open_debugger(args, None)
    try:
        until: str | int = args.until
        if args.until not in STAGES:
            try:
                until = int(args.until, 0)
            except ValueError:
                raise ConfigError(f"--until: {args.until!r} is neither a stage nor an address") from None
        try:
            with open(out_path, "w") as out:
                count = write_trace(dbg, until, out, from_stage=args.from_stage, limit=limit)
        except OSError as exc:
            raise VmmError(f"--out: {out_path}: cannot write: {exc.strerror}") from None
        print(f"vmm: traced {count:,} instructions to {args.out}", file=sys.stderr)
        return 0
    finally:
        dbg.machine.close()
