"""README's command table says what `vmm COMMAND --help` says: every flag a row names
exists, and every flag of every command is named in a row for that command."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# `vmm run`, `vmm run\|step\|trace`, `vmm disk info`, `vmm nvram show\|set`
COMMAND = re.compile(r"`vmm ((?:disk|nvram) [a-z]+(?:\\\|[a-z]+)*|[a-z][a-z-]*(?:\\\|[a-z][a-z-]*)*)")
GROUPS = ("disk", "nvram")


def table_rows() -> list[tuple[list[str], set[str]]]:
    """(the commands a row names, the flags it names) for each row of README's table."""
    text = (ROOT / "README.md").read_text()
    start = text.index("| command |", text.index("## Commands"))
    rows = []
    for row in text[start : text.index("\n\n", start)].splitlines()[2:]:
        commands = []
        for name in COMMAND.findall(row.split(" | ")[0]):
            head, _, subs = name.partition(" ")
            commands += [f"{head} {sub}" for sub in subs.split("\\|")] if subs else name.split("\\|")
        rows.append((commands, set(FLAG.findall(row.split(" | ")[0])) | set(FLAG.findall(row))))
    return rows


def help_flags(command: str) -> set[str]:
    argv = command.split() if command != "" else []
    out = subprocess.run([sys.executable, "-m", "vmm", *argv, "--help"], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return set(FLAG.findall(out)) - {"--help"}


def test_readme_table_and_help_name_the_same_flags():
    rows = table_rows()
    commands = sorted({c for names, _ in rows for c in names if c not in GROUPS})
    assert {"run", "step", "trace", "screenshot", "test", "create", "set", "disk convert", "nvram set"} <= set(commands)
    actual = {c: help_flags(c) for c in commands}
    actual[""] = help_flags("")  # `vmm --version`
    problems = []
    for names, flags in rows:
        known = set().union(*(actual.get(c, set()) for c in names), actual[""])
        if unknown := flags - known:
            problems.append(f"README's row for {', '.join(names)} names {sorted(unknown)}: no such flag")
    for command, flags in actual.items():
        named = set().union(*(f for names, f in rows if command in names or (command == "" and not names)))
        if missing := flags - named:
            problems.append(f"`vmm {command} --help` has {sorted(missing)}: README's table does not name them")
    assert not problems, "\n".join(problems)
