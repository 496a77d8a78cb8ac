"""What ``vmm test`` shows while and after it runs.

On a terminal a tqdm bar counts the tests done out of all, with passed/failed/errors and
an ETA, the result lines printed above it; elsewhere (CI logs, pipes) only the plain result
lines. At the end, the slowest tests (as pytest's ``--durations``) and the fleet summary:
instructions and virtual time per second of host time, over all workers.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import TextIO

from vmm.testing.runner import TestResult


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None, bar: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.total = total
        self.counts: Counter[str] = Counter()
        self.running: dict[int, str] = {}
        use_bar = self.stream.isatty() if bar is None else bar
        self.bar = None
        if use_bar and total > 0:
            from tqdm import tqdm

            shape = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}"
            self.bar = tqdm(total=total, file=self.stream, unit="test", leave=False, bar_format=shape)

    def started(self, index: int, worker: str) -> None:
        self.running[index] = worker
        self._postfix()

    def finished(self, result: TestResult, counted: bool = True) -> None:
        line = result.line()
        if result.retried_after:
            line += f"\n        (retried: {', '.join(result.retried_after)} died while running it)"
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
            if counted:
                self.counts[result.outcome] += 1
                self.bar.update(1)
                self._postfix()
        else:
            if counted:
                self.counts[result.outcome] += 1
            print(line, file=self.stream, flush=True)

    def _postfix(self) -> None:
        if self.bar is not None:
            parts = [f"{n} {k}" for k, n in self.counts.items() if n]
            self.bar.set_postfix_str(", ".join(parts), refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def slowest(results: list[TestResult], count: int) -> list[str]:
    """pytest --durations: the ``count`` slowest tests (0: all), slowest first."""
    ran = sorted((r for r in results if r.wall_s > 0), key=lambda r: (-r.wall_s, r.name))
    if not ran or count < 0:
        return []
    shown = ran if count == 0 else ran[:count]
    title = "slowest durations" if count == 0 else f"slowest {len(shown)} durations"
    lines = [f"== {title} =="]
    for r in shown:
        where = f"  [{r.worker}]" if r.worker else ""
        lines.append(f"{r.wall_s:8.2f}s  {r.name}{where}")
    return lines


def fleet_summary(results: list[TestResult], wall: float) -> str:
    """Instructions and virtual time per second of host time, summed over the tests (test
    time) and over the run (what the fleet delivered while the run lasted)."""
    ran = [r for r in results if r.wall_s > 0]
    insns = sum(r.instructions for r in ran)
    virtual = sum(r.time_ns for r in ran) / 1e9
    busy = sum(r.wall_s for r in ran)
    hosts = len({r.worker for r in ran}) or 1
    if not ran or busy <= 0 or wall <= 0:
        return "fleet: no test ran"
    return (f"fleet: {insns:,} instructions and {virtual:.3f} s virtual in {busy:.2f} s of test time on "
            f"{hosts} worker{'s' if hosts != 1 else ''}: {insns / busy / 1e6:.1f} M instructions and "
            f"{virtual / busy:.3f} s virtual per host second; {len(ran) / wall:.2f} tests/s "
            f"over the run's {wall:.2f} s")  # fmt: skip
