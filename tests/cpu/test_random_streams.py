"""A guest executing seeded random instruction streams for a million instructions in each
mode (issue 23): the process neither crashes nor lets any exception but a VmmError out.

Each mode runs in its own process (tests/cpu/random_streams.py), so a crash of the CPU core
shows as the process dying by a signal, not as the test run dying. x87 opcodes included.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

INSTRUCTIONS = 1_000_000
CLEAN_ENDS = {"limit", "halted", "triple-fault", "exit-port", "error", "stopped"}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["real", "protected", "long"])
def test_random_streams_run_a_million_instructions_without_a_host_exception(mode):
    done = subprocess.run(
        [sys.executable, "-m", "tests.cpu.random_streams", mode, str(INSTRUCTIONS), "23"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"the process ended with {done.returncode}: {done.stderr[-2000:]}"
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["instructions"] >= INSTRUCTIONS
    unexpected = {k: v for k, v in report["outcomes"].items() if k not in CLEAN_ENDS and not k.startswith("VmmError")}
    assert not unexpected, report
