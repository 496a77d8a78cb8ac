"""The x86 exception vectors by name (Intel SDM vol. 3A, table 6-1), for fault reports."""

from __future__ import annotations

FAULT_NAMES = {
    0: "#DE divide error", 1: "#DB debug", 2: "NMI", 3: "#BP breakpoint", 4: "#OF overflow",
    5: "#BR bound", 6: "#UD invalid opcode", 7: "#NM no FPU", 8: "#DF double fault",
    10: "#TS invalid TSS", 11: "#NP segment not present", 12: "#SS stack fault",
    13: "#GP general protection", 14: "#PF page fault", 16: "#MF x87 error", 17: "#AC alignment",
    18: "#MC machine check", 19: "#XM SIMD error",
}  # fmt: skip


def describe_fault(vector: int, error: int | None, pc: int, software: bool = False) -> str:
    """``#GP general protection error 0x1a at pc 0xf0011``; a software interrupt (INT n,
    INT3, INTO) by its instruction, with the address it returns to (the one the CPU
    holds when it enters one): ``INT 10h (software interrupt) returning to pc 0x10302``."""
    name = FAULT_NAMES.get(vector, f"vector {vector:#x}")
    if software:
        # INT3 and INTO raise #BP and #OF by design: those names still say what happened.
        also = f", {name}" if vector in (3, 4) else ""
        return f"INT {vector:02X}h (software interrupt{also}) returning to pc {pc:#x}"
    code = "" if error is None else f" error {error:#x}"
    return f"{name}{code} at pc {pc:#x}"
