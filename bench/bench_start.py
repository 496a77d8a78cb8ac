"""Start-up: `vmm --help` and `vmm run --help` against `qemu-system-x86_64 --help`, side by side.

What a user waits for before anything happens. The three commands run interleaved,
ROUNDS times each, in this one process's run; each figure is the best wall time of a
whole process (interpreter start, imports, argparse). The target: vmm --help within 4x
QEMU's and under 0.3 s. `make` compiles vmm's bytecode at install (this environment sets
PYTHONDONTWRITEBYTECODE=1, so nothing else would)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 15


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    vmm = ROOT / ".venv" / "bin" / "vmm"
    qemu = shutil.which("qemu-system-x86_64")
    if not vmm.exists() or qemu is None:
        print(f"   skipped: {'the vmm script (run make)' if not vmm.exists() else 'qemu-system-x86_64'} is missing")
        return
    commands = {"vmm --help": [str(vmm), "--help"], "vmm run --help": [str(vmm), "run", "--help"],
                "qemu-system-x86_64 --help": [qemu, "--help"]}  # fmt: skip
    best = dict.fromkeys(commands, float("inf"))
    for _ in range(ROUNDS):
        for name, argv in commands.items():
            best[name] = min(best[name], wall(argv))
    reference = best["qemu-system-x86_64 --help"]
    for name, seconds in best.items():
        print(f"   {name:<28} {seconds * 1000:7.1f} ms  ({seconds / reference:4.1f}x qemu)")
