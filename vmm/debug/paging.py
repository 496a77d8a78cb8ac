"""Moved to :mod:`vmm.cpu.paging` (the one page-table walker, used by the debugger, the
test reports and Machine's virtual-memory access)."""

from vmm.cpu.paging import (
    PTE_A,
    PTE_D,
    PTE_NX,
    PTE_P,
    PTE_PS,
    PTE_RW,
    PTE_US,
    Level,
    PageFault,
    PhysicalReader,
    read_linear,
    translate,
    walk,
    write_linear,
)

__all__ = ["PTE_A", "PTE_D", "PTE_NX", "PTE_P", "PTE_PS", "PTE_RW", "PTE_US", "Level", "PageFault",
           "PhysicalReader", "read_linear", "translate", "walk", "write_linear"]  # fmt: skip
