"""Debugger support on the Unicorn backend: breakpoints, exact-count runs, block watches.

Breakpoints are `UC_HOOK_CODE` hooks restricted to their one address, so code elsewhere
runs at full speed (unicorn-notes.md, "Measured speeds"). The glue counts instructions a
whole translated block at a time when the block starts; a breakpoint that stops the run
in the middle of a block has therefore counted the block's tail, which never ran. That
tail is exactly the translated block that starts at the breakpoint (both end at the same
branch), so its instruction count, from Unicorn's TB cache, is what is taken back.

Watchpoints protect the guest-physical 4 KiB pages holding the watched range
(``mem_protect``: write and/or read permission removed) and hook
``UC_HOOK_MEM_WRITE_PROT`` / ``UC_HOOK_MEM_READ_PROT``, so accesses to other pages run at
full speed (a ``UC_HOOK_MEM_WRITE`` on all memory slows every write ~20x). What Unicorn
2.1.4 does with the hook's answer (checked on a small guest): ``False`` fails
``emu_start`` with UC_ERR_WRITE_PROT; ``True`` drops the access and goes on (the store is
lost); ``True`` after ``emu_stop()`` stops *before* the accessing instruction, EIP at it,
memory unchanged. The last is what is used: the block's tail is taken back from the count
as for a breakpoint, then that one instruction runs with the page unprotected (counting
mode, exact) and the page is protected again. An access outside the watched range (same
page) goes on that way without stopping; one inside it is reported after it ran.
Unicorn re-checks protection only on a softmmu TLB miss, and a store fills the entry for
loads as well (checked: a read-protected page written first then read is read without the
hook), so a read watch also removes write permission; ``mem_protect`` flushes the TLB.

``run_exact(n)`` retires exactly ``n`` instructions (or stops earlier at a breakpoint, a
halt or a machine event): whole blocks until the end is near, then Unicorn's counting
mode for the last few hundred, which instruments every instruction and so stays short.
"""

from __future__ import annotations

from collections.abc import Callable

from unicorn import unicorn_const as ucc

from vmm.cpu.base import (
    FEATURE_BLOCK_WATCH,
    FEATURE_BREAKPOINTS,
    FEATURE_REVERSE,
    FEATURE_STEP,
    FEATURE_TRACE,
    FEATURE_WATCHPOINTS,
    DebugStop,
    MemoryAccess,
    RunResult,
    StopReason,
    WatchRange,
)
from vmm.cpu.unicorn import UnicornCpu

__all__ = ["DebugStop", "MemoryAccess", "UnicornDebug", "WatchRange", "mode_from_hflags"]

# QEMU's hflags bits (target/i386/cpu.h): the mode as the translator sees it.
HF_CPL_MASK = 3
HF_PE = 1 << 7
HF_LMA = 1 << 14
HF_CS64 = 1 << 15
HF_VM = 1 << 17

# A block never holds more than 512 instructions (TCG_MAX_INSNS): counting mode for the
# last stretch before an exact target keeps the whole-block overshoot out of it.
COUNTED_TAIL = 600
PAGE = 4096


def mode_from_hflags(flags: int) -> str:
    if not flags & HF_PE:
        return "real"
    if flags & HF_VM:
        return "vm86"
    if flags & HF_LMA:
        return "long" if flags & HF_CS64 else "compat"
    return "protected"


class UnicornDebug:
    """Breakpoints and exact stepping on one UnicornCpu (attach, use, ``close``): the
    CpuDebug of vmm.cpu.base, with every feature."""

    features = frozenset({FEATURE_BREAKPOINTS, FEATURE_STEP, FEATURE_WATCHPOINTS, FEATURE_BLOCK_WATCH,
                          FEATURE_REVERSE, FEATURE_TRACE})  # fmt: skip

    def __init__(self, cpu: UnicornCpu) -> None:
        self.cpu = cpu
        self._hooks: dict[int, int] = {}
        self._hit: int | None = None
        self._hit_insns = 0
        self._block_hook: int | None = None
        self._block_watch: Callable[[int], bool] | None = None
        self._watch_stop = False
        self._counted_blocks = False
        self.armed = True  # False: breakpoints and the block watch let everything run
        self._watches: list[WatchRange] = []
        self._protected: dict[int, int] = {}  # physical page -> Unicorn permissions
        self._prot_hooks: list[int] = []
        self._access: MemoryAccess | None = None
        self._access_watched = False
        self.read_linear: Callable[[int, int], bytes] | None = None
        self._trace_hook: int | None = None

    # ---- breakpoints ----

    @property
    def breakpoints(self) -> set[int]:
        return set(self._hooks)

    def add_breakpoint(self, linear: int) -> None:
        if linear in self._hooks:
            return
        uc = self.cpu.engine
        self._hooks[linear] = uc.hook_add(ucc.UC_HOOK_CODE, self._on_code, begin=linear, end=linear)
        # Code hooks are compiled into translated blocks: drop the ones made without it.
        self._flush()

    def remove_breakpoint(self, linear: int) -> None:
        handle = self._hooks.pop(linear, None)
        if handle is not None:
            self.cpu.engine.hook_del(handle)
            self._flush()

    def _flush(self) -> None:
        self.cpu.flush_translations()

    def _on_code(self, uc, address: int, _size: int, _data) -> None:
        # A stop already decided at this block's start (deadline, stage) wins: the block
        # was not counted, and the breakpoint is met again when the run resumes.
        if not self.armed or self.cpu.stop_pending or self._hit is not None:
            return
        self._hit = address
        self._hit_insns = self.cpu.instructions
        self.cpu.stop_from_hook()

    # ---- block watch (opt-in slow path: Python once per translated block) ----

    def set_block_watch(self, watch: Callable[[int], bool] | None) -> None:
        """Call ``watch(linear_pc)`` at each block start; True stops before that block."""
        self._block_watch = watch
        uc = self.cpu.engine
        if watch is None and self._block_hook is not None:
            uc.hook_del(self._block_hook)
            self._block_hook = None
            self._flush()
        elif watch is not None and self._block_hook is None:
            self._block_hook = uc.hook_add(ucc.UC_HOOK_BLOCK, self._on_block)
            self._flush()

    def _on_block(self, uc, address: int, size: int, _data) -> None:
        if not self.armed or self._block_watch is None or self.cpu.stop_pending or self._hit is not None:
            return
        if self._block_watch(address):
            # The glue counted this block when it started; it will not run now.
            self._hit = address
            self._hit_insns = self.cpu.instructions
            self._watch_stop = True
            self.cpu.stop_from_hook()

    # ---- instruction trace (the slowest path: Python before every instruction) ----

    def trace_code(self, callback: Callable[[int], None] | None) -> None:
        uc = self.cpu.engine
        if self._trace_hook is not None:
            uc.hook_del(self._trace_hook)
            self._trace_hook = None
        if callback is not None:
            self._trace_hook = uc.hook_add(ucc.UC_HOOK_CODE, lambda _uc, addr, _size, _data: callback(addr))
        # Code hooks are compiled into translated blocks: translate afresh either way.
        self._flush()

    # ---- watchpoints (page protection) ----

    @property
    def watchpoints(self) -> list[WatchRange]:
        return list(self._watches)

    def set_watchpoints(self, watches: list[WatchRange]) -> None:
        """Protect exactly the pages these ranges need (and unprotect the others)."""
        self._watches = list(watches)
        wanted: dict[int, int] = {}
        for w in watches:
            for page in w.pages:
                perms = wanted.get(page, ucc.UC_PROT_ALL)
                if "w" in w.access:
                    perms &= ~ucc.UC_PROT_WRITE
                if "r" in w.access:
                    # A store fills the softmmu TLB entry for loads too, and Unicorn checks
                    # UC_PROT_READ only on a TLB miss: a read watch must trap stores too.
                    perms &= ~(ucc.UC_PROT_READ | ucc.UC_PROT_WRITE)
                wanted[page] = perms
        uc = self.cpu.engine
        for page in set(self._protected) - set(wanted):
            uc.mem_protect(page, PAGE, ucc.UC_PROT_ALL)
        self._protected = wanted
        self._protect()
        if wanted and not self._prot_hooks:
            self._prot_hooks = [uc.hook_add(ucc.UC_HOOK_MEM_WRITE_PROT, self._on_prot),
                                uc.hook_add(ucc.UC_HOOK_MEM_READ_PROT, self._on_prot)]  # fmt: skip
        elif not wanted:
            for handle in self._prot_hooks:
                uc.hook_del(handle)
            self._prot_hooks = []

    def _protect(self, perms: int | None = None) -> None:
        for page, wanted in self._protected.items():
            self.cpu.engine.mem_protect(page, PAGE, wanted if perms is None else perms)

    def _on_prot(self, uc, access: int, address: int, size: int, _value: int, _data) -> bool:
        if self._access is not None:
            return True  # already stopping before an earlier instruction
        kind = "write" if access == ucc.UC_MEM_WRITE_PROT else "read"
        watched = self.armed and any(
            w.start < address + size and address < w.start + w.length and kind[0] in w.access
            for w in self._watches)  # fmt: skip
        self._access = MemoryAccess(kind, address, size, self.cpu.linear_pc())
        self._access_watched = watched
        self._hit_insns = self.cpu.instructions
        self.cpu.stop_from_hook()
        return True  # with emu_stop: stop before this instruction (see the module docstring)

    def _take_access(self, target: int, pending: RunResult | None) -> DebugStop | None:
        """The CPU stopped before an instruction touching a protected page: run it with
        the pages open unless the target is reached; a watched access stops the run.
        ``pending`` is a stop the machine asked for in the same block: it comes first
        (the access is met again when the run resumes)."""
        access, self._access = self._access, None
        self.cpu.instructions = self._hit_insns - self.cpu.block_icount(access.pc)
        if pending is not None:
            return DebugStop("machine", result=pending)
        if self.cpu.instructions >= target:
            return DebugStop("done")
        read = self.read_linear
        if self._access_watched and read is not None:
            access.old = self._read_linear(access.address, access.size)
        # Breakpoints stay quiet for this one instruction: it is already under way.
        armed, self.armed = self.armed, False
        self._protect(ucc.UC_PROT_ALL)
        try:
            stop = self._run_counted(1)
        finally:
            self._protect()
            self.armed = armed
        if stop is not None:
            return stop
        if self._access_watched:
            if read is not None:
                access.new = self._read_linear(access.address, access.size)
            return DebugStop("watchpoint", access.pc, access=access)
        return None

    def _read_linear(self, address: int, size: int) -> bytes:
        try:
            return self.read_linear(address, size)
        except Exception:  # noqa: BLE001 - an unreadable value is shown as absent, not fatal
            return b""

    def mode(self) -> str:
        return mode_from_hflags(self.cpu.hflags())

    # ---- exact runs ----

    def run_exact(self, count: int, armed: bool = True) -> DebugStop:
        """Retire exactly ``count`` instructions unless something stops the CPU first
        (with ``armed`` False, breakpoints and the block watch do not stop it)."""
        self.armed = armed
        target = self.cpu.instructions + count
        while target - self.cpu.instructions > COUNTED_TAIL:
            stop = self._run_blocks(target - self.cpu.instructions - COUNTED_TAIL)
            if stop is not None and stop.kind == "access":
                stop = self._take_access(target, stop.result)
            if stop is not None:
                return stop
        while self.cpu.instructions < target:
            stop = self._run_counted(target - self.cpu.instructions)
            if stop is not None and stop.kind == "access":
                stop = self._take_access(target, stop.result)
            if stop is not None:
                return stop
        return DebugStop("done")

    def _take_hit(self) -> DebugStop:
        address, self._hit = self._hit, None
        self.cpu.instructions = self._hit_insns - self.cpu.block_icount(address)
        if self._watch_stop:
            self._watch_stop = False
            return DebugStop("watch", address)
        return DebugStop("breakpoint", address)

    def _run_blocks(self, budget: int) -> DebugStop | None:
        self._hit = None
        if self._counted_blocks:
            # Blocks translated with the counting hook would keep calling it.
            self._counted_blocks = False
            self._flush()
        result = self.cpu.run(max(1, budget))
        if self._access is not None:
            return DebugStop("access", result=None if result.reason == StopReason.HALT else result)
        if self._hit is not None:
            return self._take_hit()
        if result.reason == StopReason.DEADLINE:
            return None
        return DebugStop("machine", result=result)

    def _run_counted(self, count: int) -> DebugStop | None:
        """Unicorn's counting mode (as UnicornCpu.step, but an early stop — a
        breakpoint, HLT, a device's stop request — keeps the count of what really ran)."""
        cpu = self.cpu
        self._counted_blocks = True
        self._hit = None
        before = cpu.instructions
        result, counted = cpu.run_counted(count)
        if result is not None and result.reason == StopReason.ERROR:
            return DebugStop("machine", result=result)
        if self._access is not None:
            pending = result is not None and result.reason in (StopReason.REQUESTED, StopReason.USER)
            return DebugStop("access", result=RunResult(StopReason.REQUESTED) if pending else None)
        if self._hit is not None:
            return self._take_hit()
        # Whole-block counting overshoots only in the last block: what ran is the
        # smaller of the request and the glue's count.
        cpu.instructions = before + min(count, counted)
        if result is None:
            return None
        return DebugStop("machine", result=result)

    def close(self) -> None:
        uc = self.cpu.engine
        if uc is None:
            return
        for handle in self._hooks.values():
            uc.hook_del(handle)
        self._hooks.clear()
        if self._trace_hook is not None:
            self.trace_code(None)
        self.set_block_watch(None)
        self.set_watchpoints([])
