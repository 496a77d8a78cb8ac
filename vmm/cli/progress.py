"""Progress on a terminal for long work (disk conversions, boots to a point), with tqdm.

Drawn on stderr only when stderr is a terminal, and cleared when done: a pipe or a log
file gets no bar, and the one line vmm prints at the end stays the only output.
"""

from __future__ import annotations

import sys


class Progress:
    """``progress(done, total)`` callback drawing one tqdm bar; ``close()`` when finished."""

    def __init__(self, label: str, unit: str = "B", stream=None) -> None:
        self.stream = stream or sys.stderr
        self.label = label
        self.unit = unit
        self.bar = None
        self.enabled = self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            divisor = 1024 if self.unit == "B" else 1000
            divisor = 1024 if self.unit == "B" else 1000
            self.bar = tqdm(total=total, desc=self.label, unit=self.unit, unit_scale=True, unit_divisor=divisor,
                            file=self.stream, leave=False, dynamic_ncols=True)  # fmt: skip
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
