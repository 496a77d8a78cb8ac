"""The debug capability on KVM (KVM_SET_GUEST_DEBUG): hardware breakpoints and
single-step, what KVM can do; the debugger says what it cannot (watchpoints, mode and
register breaks, instruction traces, going back).

Instruction counts on KVM follow host time (vmm.cpu.kvm), so only a single-stepped run
is exact: ``run_exact`` steps one instruction per KVM_RUN up to STEP_LIMIT instructions
and sets the count to what was stepped; a longer run goes at full speed with the
breakpoints armed and ends at the deadline, near but not exactly at the count.
"""

from __future__ import annotations

from collections.abc import Callable

from vmm.cpu.base import (
    FEATURE_BREAKPOINTS,
    FEATURE_STEP,
    DebugStop,
    DebugUnsupported,
    StopReason,
    WatchRange,
)
from vmm.cpu.kvm import KvmCpu

STEP_LIMIT = 10_000  # longer exact runs would take an exit per instruction
FAR = 1 << 40  # a step's own budget (hours of guest time): it ends at its debug exit


class KvmDebug:
    """CpuDebug on a KvmCpu (see vmm.cpu.base)."""

    features = frozenset({FEATURE_BREAKPOINTS, FEATURE_STEP})

    def __init__(self, cpu: KvmCpu) -> None:
        self.cpu = cpu
        self.armed = True
        self.read_linear: Callable[[int, int], bytes] | None = None
        self._breakpoints: list[int] = []

    @property
    def breakpoints(self) -> set[int]:
        return set(self._breakpoints)

    def add_breakpoint(self, linear: int) -> None:
        if linear in self._breakpoints:
            return
        self._breakpoints.append(linear)
        try:
            self.cpu.set_guest_debug(self._breakpoints, single_step=False)
        except DebugUnsupported:
            self._breakpoints.remove(linear)
            raise

    def remove_breakpoint(self, linear: int) -> None:
        if linear in self._breakpoints:
            self._breakpoints.remove(linear)
            self.cpu.set_guest_debug(self._breakpoints, single_step=False)

    def set_watchpoints(self, watches: list[WatchRange]) -> None:
        if watches:
            raise DebugUnsupported("the KVM backend cannot watch memory (use --accel unicorn)")

    def set_block_watch(self, watch: Callable[[int], bool] | None) -> None:
        if watch is not None:
            raise DebugUnsupported("the KVM backend cannot break on mode, register or vector changes "
                                   "(use --accel unicorn)")  # fmt: skip

    def trace_code(self, callback: Callable[[int], None] | None) -> None:
        if callback is not None:
            raise DebugUnsupported("the KVM backend cannot trace every instruction (use --accel unicorn)")

    def mode(self) -> str:
        return self.cpu.get_state().mode

    def run_exact(self, count: int, armed: bool = True) -> DebugStop:
        self.armed = armed
        breakpoints = self._breakpoints if armed else []
        if count > STEP_LIMIT:
            self.cpu.set_guest_debug(breakpoints, single_step=False)
            result = self.cpu.run(count)
            if result.reason == StopReason.DEBUG:
                return DebugStop("breakpoint", self.cpu.debug_stop_pc)
            if result.reason == StopReason.DEADLINE:
                return DebugStop("done")
            return DebugStop("machine", result=result)
        before = self.cpu.instructions
        self.cpu.set_guest_debug(breakpoints, single_step=True)
        try:
            for stepped in range(count):
                result = self.cpu.run(FAR)
                if result.reason == StopReason.DEBUG and result.detail == "step":
                    continue
                if result.reason == StopReason.DEBUG:  # a breakpoint, before its instruction
                    self.cpu.instructions = before + stepped
                    return DebugStop("breakpoint", self.cpu.debug_stop_pc)
                # An exit the machine handles (I/O that asked to stop, HLT) ends after its
                # instruction; an error before it.
                self.cpu.instructions = before + stepped + (result.reason != StopReason.ERROR)
                return DebugStop("machine", result=result)
            self.cpu.instructions = before + count
            return DebugStop("done")
        finally:
            self.cpu.set_guest_debug(self._breakpoints, single_step=False)

    def close(self) -> None:
        self._breakpoints = []
        self.cpu.set_guest_debug([], single_step=False)
