"""Boot stages: the names a class steps through and a regression test asserts on.

``firmware`` from reset, ``bootloader`` from the first instruction at linear 0x7C00,
``kernel`` from the kernel's entry (the Multiboot entry when vmm loaded it, else an entry
named in the bundle), ``init`` from the first instruction at CPL 3 (DESIGN.md, "Boot
stages"). The machine detects each transition natively (a one-shot block breakpoint or
a CPL-3 watch in the CPU glue), so tracking costs nothing per instruction.
"""

from __future__ import annotations

from dataclasses import dataclass

STAGES = ("firmware", "bootloader", "kernel", "init")
BOOT_SECTOR_ADDRESS = 0x7C00


@dataclass(frozen=True)
class Transition:
    stage: str
    instructions: int
    time_ns: int
    pc: int

    def describe(self) -> str:
        return (f"stage {self.stage:<10} at insn {self.instructions:>12,}  "
                f"t={self.time_ns / 1e6:10.3f} ms  pc={self.pc:#x}")  # fmt: skip


class StageTracker:
    def __init__(self, kernel_entry: int | None = None) -> None:
        self.kernel_entry = kernel_entry
        self.timeline: list[Transition] = []

    @property
    def current(self) -> str | None:
        return self.timeline[-1].stage if self.timeline else None

    def enter(self, stage: str, instructions: int, time_ns: int, pc: int) -> Transition | None:
        """Record ``stage`` unless the boot is already at or past it."""
        if self.current is not None and STAGES.index(stage) <= STAGES.index(self.current):
            return None
        transition = Transition(stage, instructions, time_ns, pc)
        self.timeline.append(transition)
        return transition

    def next_breakpoint(self) -> int | None:
        """The linear address whose first execution starts the next stage, if it has one."""
        current = self.current
        if current == "firmware":
            return BOOT_SECTOR_ADDRESS
        if current == "bootloader" and self.kernel_entry is not None:
            return self.kernel_entry
        return None

    def save(self) -> list[dict]:
        return [t.__dict__.copy() for t in self.timeline]

    def restore(self, data: list[dict]) -> None:
        self.timeline = [Transition(**t) for t in data]
