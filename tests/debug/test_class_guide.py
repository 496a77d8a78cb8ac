"""docs/class-guide.md's transcripts are run and compared: each ```transcript block starts
with the `$ vmm step ... --script FILE` line, and its `(vmm) ` lines are the script.
A line ``...`` in the guide stands for any number of lines (as doctest's ELLIPSIS) and
``[...]`` inside a line for any text: instruction counts and kernel addresses, which move
whenever the firmware or the toy OS changes."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

from tests.conftest import ROOT, require_file

GUIDE = ROOT / "docs" / "class-guide.md"


def transcripts() -> list[list[str]]:
    return [block.splitlines() for block in re.findall(r"```transcript\n(.*?)```", GUIDE.read_text(), re.S)]


def matches(expected: list[str], actual: list[str]) -> bool:
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and same_line(expected[0], actual[0]) and matches(expected[1:], actual[1:])


def same_line(expected: str, actual: str) -> bool:
    if "[...]" not in expected:
        return expected == actual
    pattern = ".*".join(re.escape(part) for part in expected.split("[...]"))
    return re.fullmatch(pattern, actual) is not None


def test_the_guide_has_transcripts():
    assert len(transcripts()) >= 3


def test_every_transcript_in_the_class_guide_matches(tmp_path):
    require_file(ROOT / "guests/build/toyos.img", "make -C firmware && make -C guests")
    require_file(ROOT / "guests/build/kernel.elf", "make -C guests")
    for number, block in enumerate(transcripts()):
        command, expected = block[0], block[1:]
        assert command.startswith("$ vmm step "), command
        argv = shlex.split(command[2:])
        script = tmp_path / f"lesson{number}.vdb"
        script.write_text("\n".join(line[len("(vmm) ") :] for line in expected if line.startswith("(vmm) ")) + "\n")
        argv[argv.index("--script") + 1] = str(script)
        result = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, cwd=ROOT, timeout=600)
        actual = result.stdout.splitlines()
        assert matches(expected, actual), f"transcript {number} differs; vmm printed:\n{result.stdout}{result.stderr}"
