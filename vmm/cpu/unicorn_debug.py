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
from dataclasses import dataclass

from unicorn import UcError
from unicorn import unicorn_const as ucc

from vmm.cpu.base import RunResult, StopReason
from vmm.cpu.state import SEGMENT_NAMES
from vmm.cpu.unicorn import UnicornCpu, ffi, lib

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


@dataclass
class DebugStop:
    """Why ``run_exact`` returned: ``done`` (all instructions retired), ``breakpoint``
    (before the instruction at ``address``), ``watch`` (a block watch said stop), or
    ``machine`` (the CPU stopped for the machine: ``result`` says why)."""

    kind: str
    address: int | None = None
    result: RunResult | None = None
    access: MemoryAccess | None = None


@dataclass(frozen=True)
class WatchRange:
    """A watched linear range and the physical pages protected for it."""

    start: int
    length: int
    access: str  # r | w | rw
    pages: tuple[int, ...]


@dataclass
class MemoryAccess:
    """A watched access, seen before the instruction ran (``old``) and after (``new``)."""

    kind: str  # read | write
    address: int  # linear
    size: int
    pc: int  # linear address of the accessing instruction
    old: bytes = b""
    new: bytes = b""


class UnicornDebug:
    """Breakpoints and exact stepping on one UnicornCpu (attach, use, ``close``)."""

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
        self.read_physical: Callable[[int, int], bytes] | None = None
        self._seg = ffi.new("struct vmm_seg *")

    # ---- breakpoints ----

    @property
    def breakpoints(self) -> set[int]:
        return set(self._hooks)

    def add_breakpoint(self, linear: int) -> None:
        if linear in self._hooks:
            return
        uc = self.cpu._uc
        self._hooks[linear] = uc.hook_add(ucc.UC_HOOK_CODE, self._on_code, begin=linear, end=linear)
        # Code hooks are compiled into translated blocks: drop the ones made without it.
        self._flush()

    def remove_breakpoint(self, linear: int) -> None:
        handle = self._hooks.pop(linear, None)
        if handle is not None:
            self.cpu._uc.hook_del(handle)
            self._flush()

    def _flush(self) -> None:
        self.cpu._uc.ctl_flush_tb()
        lib.vmm_flush_icount(self.cpu._g)

    def _on_code(self, uc, address: int, _size: int, _data) -> None:
        # A stop already decided at this block's start (deadline, stage) wins: the block
        # was not counted, and the breakpoint is met again when the run resumes.
        if not self.armed or self.cpu._g.stop_reason != lib.VMM_STOP_NONE or self._hit is not None:
            return
        self._hit = address
        self._hit_insns = self.cpu._g.insns
        uc.emu_stop()

    # ---- block watch (opt-in slow path: Python once per translated block) ----

    def set_block_watch(self, watch: Callable[[int], bool] | None) -> None:
        """Call ``watch(linear_pc)`` at each block start; True stops before that block."""
        self._block_watch = watch
        uc = self.cpu._uc
        if watch is None and self._block_hook is not None:
            uc.hook_del(self._block_hook)
            self._block_hook = None
            self._flush()
        elif watch is not None and self._block_hook is None:
            self._block_hook = uc.hook_add(ucc.UC_HOOK_BLOCK, self._on_block)
            self._flush()

    def _on_block(self, uc, address: int, size: int, _data) -> None:
        g = self.cpu._g
        if not self.armed or self._block_watch is None or g.stop_reason != lib.VMM_STOP_NONE or self._hit is not None:
            return
        if self._block_watch(address):
            # The glue counted this block when it started; it will not run now.
            self._hit = address
            self._hit_insns = g.insns
            self._watch_stop = True
            uc.emu_stop()

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
        uc = self.cpu._uc
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
            self.cpu._uc.mem_protect(page, PAGE, wanted if perms is None else perms)

    def _on_prot(self, uc, access: int, address: int, size: int, _value: int, _data) -> bool:
        if self._access is not None:
            return True  # already stopping before an earlier instruction
        kind = "write" if access == ucc.UC_MEM_WRITE_PROT else "read"
        watched = self.armed and any(
            w.start < address + size and address < w.start + w.length and kind[0] in w.access
            for w in self._watches)  # fmt: skip
        self._access = MemoryAccess(kind, address, size, self._linear_pc())
        self._access_watched = watched
        self._hit_insns = self.cpu._g.insns
        uc.emu_stop()
        return True  # with emu_stop: stop before this instruction (see the module docstring)

    def _linear_pc(self) -> int:
        """CS base + EIP, as X86State.pc, without reading the whole state (~10x dearer)."""
        g = self.cpu._g
        lib.vmm_get_seg(g, SEGMENT_NAMES.index("cs"), self._seg)
        return (self._seg.base + lib.vmm_get_env_u64(g, lib.VMM_ENV_EIP)) & 0xFFFFFFFFFFFFFFFF

    def _take_access(self, target: int, pending: RunResult | None) -> DebugStop | None:
        """The CPU stopped before an instruction touching a protected page: run it with
        the pages open unless the target is reached; a watched access stops the run.
        ``pending`` is a stop the machine asked for in the same block: it comes first
        (the access is met again when the run resumes)."""
        access, self._access = self._access, None
        self.cpu._g.insns = self._hit_insns - self._block_icount(access.pc)
        if pending is not None:
            return DebugStop("machine", result=pending)
        if self.cpu.instructions >= target:
            return DebugStop("done")
        read = self.read_physical
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
            return self.read_physical(address, size)
        except Exception:  # noqa: BLE001 - an unreadable value is shown as absent, not fatal
            return b""

    def hflags(self) -> int:
        return lib.vmm_get_env_u64(self.cpu._g, lib.VMM_ENV_HFLAGS)

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
        g = self.cpu._g
        if self._watch_stop:
            self._watch_stop = False
            tail = self._block_icount(address)
            g.insns = self._hit_insns - tail
            return DebugStop("watch", address)
        g.insns = self._hit_insns - self._block_icount(address)
        return DebugStop("breakpoint", address)

    def _block_icount(self, linear: int) -> int:
        """Instructions the glue counted for a block entered at ``linear`` (0 if none)."""
        try:
            tb = self.cpu._uc.ctl_request_cache(linear)
        except UcError:
            return 0
        pc, icount, _size = tb
        return icount if pc == linear else 0

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
        """Unicorn's counting mode (mirrors UnicornCpu.step, but an early stop — a
        breakpoint, HLT, a device's stop request — keeps the count of what really ran)."""
        cpu, g = self.cpu, self.cpu._g
        # Unicorn adds its counting hook without dropping blocks translated before: a
        # cached loop would run on uncounted. Translate afresh with the hook.
        self._flush()
        self._counted_blocks = True
        before = g.insns
        g.deadline = 0xFFFFFFFFFFFFFFFF
        g.stop_reason = lib.VMM_STOP_NONE
        g.delivering = -1
        self._hit = None
        eip = lib.vmm_get_env_u64(g, lib.VMM_ENV_EIP)
        cpu._running = True
        try:
            cpu._uc.emu_start(eip, 0, count=count)
        except UcError as exc:
            if cpu._error is not None:
                cpu._take_error()
            return DebugStop("machine", result=RunResult(StopReason.ERROR, cpu._describe_uc_error(exc)))
        finally:
            cpu._running = False
            g.deadline = g.insns
        if cpu._a20_pending is not None:
            cpu._apply_a20()
        if cpu._error is not None:
            cpu._take_error()
        if self._access is not None:
            pending = g.stop_reason in (lib.VMM_STOP_REQUESTED, lib.VMM_STOP_USER)
            return DebugStop("access", result=RunResult(StopReason.REQUESTED) if pending else None)
        if self._hit is not None:
            return self._take_hit()
        # Whole-block counting overshoots only in the last block: what ran is the
        # smaller of the request and the glue's count.
        counted = g.insns - before
        g.insns = before + min(count, counted)
        reason = g.stop_reason
        if g.delivering == 8:
            return DebugStop("machine", result=RunResult(StopReason.SHUTDOWN, "triple fault", cpu.fault_chain()))
        if reason == lib.VMM_STOP_RESUME or (reason == lib.VMM_STOP_NONE and g.delivering == 6):
            return None
        if reason == lib.VMM_STOP_REQUESTED:
            return DebugStop("machine", result=RunResult(StopReason.REQUESTED))
        if reason == lib.VMM_STOP_BREAKPOINT:
            return DebugStop("machine", result=RunResult(StopReason.BREAKPOINT))
        if reason == lib.VMM_STOP_USER:
            return DebugStop("machine", result=RunResult(StopReason.USER))
        if counted <= count:
            # The glue counts the next block before the counting hook stops the run, so
            # a count that did not overshoot means the CPU stopped by itself: HLT.
            return DebugStop("machine", result=RunResult(StopReason.HALT))
        return None

    def close(self) -> None:
        uc = self.cpu._uc
        if uc is None:
            return
        for handle in self._hooks.values():
            uc.hook_del(handle)
        self._hooks.clear()
        self.set_block_watch(None)
        self.set_watchpoints([])
