"""`vmm test --jobs 2` against `--jobs 1` on the same suite, measured side by side.

The suite: the project's own expectation files (tests/guests) plus copies of the toy OS
shell test, so that each job has several boots to run. Each figure is the wall time of a
whole `vmm test` process (start-up included), best of two; the ratio is what a 2-core CI
machine gains from --jobs 2.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "tests" / "guests"
COPIES = 10  # extra toy OS boots (about 0.3 s each)
ROUNDS = 2


def build_suite(folder: Path) -> list[Path]:
    files = []
    for spec in sorted(GUESTS.glob("*.vmm.toml")):
        # Relative paths in the files point from tests/guests: rewrite them to absolute ones.
        text = spec.read_text().replace('"../../', f'"{ROOT}/').replace('"../', f'"{ROOT}/tests/')
        files.append(folder / spec.name)
        files[-1].write_text(text)
    shell = (folder / "test_toyos_shell.vmm.toml").read_text()
    for i in range(COPIES):
        files.append(folder / f"test_toyos_copy{i}.vmm.toml")
        files[-1].write_text(shell.replace('name = "', f'name = "copy {i}: '))
    return files


def timed_run(files: list[Path], jobs: int, out: Path) -> float:
    """The wall time of the test phase, as `vmm test` reports it: Python's start-up and
    imports are the same for both job counts and would only dilute the ratio."""
    reports = out / "vmm-test-out"  # a folder of its own: each vmm test run clears its --out
    vmm = [sys.executable, "-m", "vmm", "test", "--jobs", str(jobs), "--out", str(reports), *map(str, files)]
    result = subprocess.run(vmm, capture_output=True, text=True, cwd=out)
    if result.returncode != 0:
        raise SystemExit(f"vmm test failed:\n{result.stdout}{result.stderr}")
    found = re.search(r" in (\d+\.\d+) s \(\d+ jobs?\)$", result.stdout, re.M)
    if found is None:
        raise SystemExit(f"vmm test printed no summary line:\n{result.stdout}")
    return float(found.group(1))


def main() -> None:
    if not (ROOT / "guests" / "build" / "toyos.img").exists():
        print("   skipped: guests/build/toyos.img is missing (run make)")
        return
    folder = Path(tempfile.mkdtemp(prefix="vmm-bench-harness-"))
    try:
        files = build_suite(folder)
        serial = min(timed_run(files, 1, folder) for _ in range(ROUNDS))
        parallel = min(timed_run(files, 2, folder) for _ in range(ROUNDS))
        load = os.getloadavg()[0]
        print(f"   suite of {len(files)} expectation files on {os.cpu_count()} cores (load average {load:.1f})")
        print(f"   --jobs 1: {serial:.2f} s   --jobs 2: {parallel:.2f} s   speed-up {serial / parallel:.2f}x")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
