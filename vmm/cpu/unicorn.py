"""The Unicorn CPU backend: QEMU's x86 translator, completed natively into a PC's CPU.

One UC_MODE_64 engine is put into the architectural reset state (SDM vol. 3, 9.1.1:
real mode, CS = F000 with base FFFF0000, IP = FFF0) and follows the guest through
protected and long mode. The native glue (csrc/uc_glue.c) delivers exceptions,
interrupts, SYSCALL/SYSENTER and counts instructions for virtual time; Python runs only
on exits: port I/O, MMIO, the interrupt acknowledge, deadlines and HLT.

Triple fault: the run stops with StopReason.SHUTDOWN and the chain of exceptions that
led to it (the machine then resets or stops, as configured).
"""

from __future__ import annotations

import ctypes
import faulthandler
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vmm.cpu.base import (
    A20_WINDOW,
    A20_WINDOW_SIZE,
    VECTOR_DOUBLE_FAULT,
    PhysRegion,
    Platform,
    RunResult,
    StopReason,
)
from vmm.cpu.state import X86State
from vmm.cpu.unicorn_engine import Engine, describe
from vmm.cpu.unicorn_state import SEG_INDEX, UnicornState, ffi, lib
from vmm.errors import CpuError
from vmm.memory import GuestMemory

if TYPE_CHECKING:
    from vmm.cpu.unicorn_debug import UnicornDebug

TSC_MHZ = 1000  # the virtual TSC ticks at 1 GHz

# The glue's stop reasons that reach the machine as they are.
_GLUE_STOPS = {
    lib.VMM_STOP_DEADLINE: StopReason.DEADLINE,
    lib.VMM_STOP_REQUESTED: StopReason.REQUESTED,
    lib.VMM_STOP_BREAKPOINT: StopReason.BREAKPOINT,
    lib.VMM_STOP_USER: StopReason.USER,
}


class UnicornCpu(UnicornState):
    """The CpuBackend on Unicorn (see vmm.cpu.base for the interface)."""

    name = "unicorn"

    def __init__(
        self, memory: GuestMemory, platform: Platform, regions: list[PhysRegion], clock_mhz: int = 100
    ) -> None:
        self.memory = memory
        self.platform = platform
        self.regions = list(regions)
        self._error: BaseException | None = None
        self._engine = Engine()  # checks the library: unicorn REQUIRED_UNICORN, vmm's patches
        self._handle = ffi.new_handle(self)
        self._rom_buffers: list[ctypes.Array] = []
        self._a20 = True
        self._a20_pending: bool | None = None
        self._running = False
        self._halted = False  # HLT executed: runs return HALT until an interrupt is taken
        self._hook_stop = False  # a debug hook stopped the engine (not a HLT)
        self._block_run = False  # inside run(): limit_run() may shorten the deadline
        self._seg = ffi.new("struct vmm_seg *")
        self._data_cbuf = None  # the data window's buffer, pinned while the glue serves it
        self._data_done: Callable[[int], None] | None = None
        err = ffi.new("char[]", 512)
        glue = lib.vmm_glue_new(self._engine.library.encode(), self._engine.handle, err, 512)
        if glue == ffi.NULL:
            self._engine.close()
            raise CpuError(f"unicorn self-check failed: {ffi.string(err).decode()}")
        self._g = glue
        self._c = glue.c  # the instruction counter, in Unicorn's CPU state
        if not faulthandler.is_enabled():
            # One line instead of a silent SIGSEGV if the CPU core crashes (under pytest
            # or python -X faulthandler, Python's own traceback dump stays in charge).
            lib.vmm_report_core_crashes()
        self._g.py_handle = self._handle
        self._g.tsc_per_insn = max(1, TSC_MHZ // clock_mhz)
        self._map_regions()
        self.reset()

    # ---- memory map ----

    def _map_regions(self) -> None:
        base_addr = ctypes.addressof(ctypes.c_char.from_buffer(self.memory.mmap))
        self._ram_address = base_addr
        for region in self.regions:
            if region.kind == "ram":
                self.memory.check(region.ram_offset, region.size)
                self._map_ptr(region.base, region.size, base_addr + region.ram_offset)
            elif region.kind == "rom":
                buffer = (ctypes.c_char * region.size).from_buffer_copy(region.data.ljust(region.size, b"\xff"))
                self._rom_buffers.append(buffer)
                # Writable shadow: vmm's PC has no chipset to write-protect the ROM copy.
                self._map_ptr(region.base, region.size, ctypes.addressof(buffer))
            elif region.kind == "device":
                self._check(lib.vmm_map_device(self._g, region.base, region.size), f"map MMIO {region.base:#x}")
            elif region.kind == "hole":
                self._check(lib.vmm_map_hole(self._g, region.base, region.size), f"map hole {region.base:#x}")
            else:
                raise ValueError(f"unknown region kind {region.kind!r}")
        self.memory.add_write_listener(self.invalidate_code)

    def _map_ptr(self, base: int, size: int, host: int) -> None:
        self._check(self._engine.map_ptr(base, size, host), f"map RAM at {base:#x}+{size:#x}")

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            raise CpuError(f"unicorn cannot {what}: {describe(status)}")

    # ---- the interface ----

    @property
    def instructions(self) -> int:
        return self._c.insns

    @instructions.setter
    def instructions(self, value: int) -> None:
        self._c.insns = value

    @property
    def stats(self) -> dict[str, int]:
        g = self._g
        return {"irqs": g.irqs_delivered, "exceptions": g.exceptions_delivered,
                "unclaimed": g.unclaimed_accesses, "random_reads": g.random_reads,
                "block_start_calls": g.attentions}  # fmt: skip

    def unclaimed_memory(self) -> tuple[int, list[tuple[int, str]]]:
        """How many accesses hit unbacked physical memory, and the last few (addr, read|write)."""
        g = self._g
        count = g.unclaimed_accesses
        recent = []
        for k in range(max(0, count - lib.VMM_FAULT_RING), count):
            entry = g.unclaimed_ring[k % lib.VMM_FAULT_RING]
            recent.append((entry & ~(1 << 63), "write" if entry >> 63 else "read"))
        return count, recent

    def set_irq_line(self, level: bool) -> None:
        self._g.irq_line = 1 if level else 0
        self._c.limit = 0  # the next block start looks (see uc_glue.h)

    def show_local_apic(self, present: bool) -> None:
        """CPUID's APIC bit (leaf 1 EDX 9): set on machines with a local APIC (`pc`)."""
        self._g.hide_apic = 0 if present else 1

    def request_stop(self) -> None:
        if self._g.stop_reason == lib.VMM_STOP_NONE:
            self._g.stop_reason = lib.VMM_STOP_REQUESTED
        self._engine.stop()

    def set_breakpoint(self, linear: int | None) -> None:
        """Stop before the block starting at ``linear`` runs (one-shot)."""
        lib.vmm_set_watch(self._g, 0xFFFFFFFFFFFFFFFF if linear is None else linear, self._g.stop_on_user)

    def watch_user_mode(self, enabled: bool) -> None:
        """Stop (StopReason.USER) before the first block that would run at CPL 3."""
        lib.vmm_set_watch(self._g, self._g.break_pc, 1 if enabled else 0)

    @property
    def tsc_offset(self) -> int:
        return self._g.tsc_offset

    @tsc_offset.setter
    def tsc_offset(self, value: int) -> None:
        self._g.tsc_offset = value

    @property
    def entropy_state(self) -> int:
        return self._g.rng_state

    @entropy_state.setter
    def entropy_state(self, value: int) -> None:
        self._g.rng_state = value & 0xFFFFFFFFFFFFFFFF

    def advance_tsc(self, ns: int) -> None:
        """Idle time passed (HLT): the TSC keeps counting though no instruction retired."""
        self._g.tsc_offset += ns * TSC_MHZ // 1000

    def limit_run(self, instructions: int) -> None:
        """End the run() under way at the first block boundary at or past ``instructions``
        (retired in total) if that comes before its deadline. (A counting run, the
        debugger's, retires its exact count and leaves timers to its caller.)"""
        if self._block_run and instructions < self._g.deadline:
            self._g.deadline = instructions
            self._c.limit = 0

    def serve_data_port(self, port: int, buffer: bytearray | None, position: int, writing: bool,
                        done: Callable[[int], None]) -> None:  # fmt: skip
        """Serve IN (or, ``writing``, OUT) of ``port`` natively from ``buffer[position:]``
        until it is used up; ``done(bytes moved)`` is called once then, before any access
        that does not fit, and at the end of a run. ``buffer`` None: no window."""
        g = self._g
        g.data_port = 0x10000
        g.data_moved = 0
        self._data_cbuf = None
        if buffer is None:
            return
        self._data_cbuf = ffi.from_buffer(buffer)
        self._data_done = done
        g.data_buf = ffi.cast("uint8_t *", self._data_cbuf)
        g.data_pos, g.data_len, g.data_writing = position, len(buffer), int(writing)
        g.data_port = port

    def _settle_data_window(self) -> None:
        """Report what the glue moved through the data window (run() returns: the device
        state must be whole for whoever looks at it next)."""
        g = self._g
        if g.data_moved and self._data_done is not None:
            moved, g.data_moved, g.data_port = g.data_moved, 0, 0x10000
            self._data_done(moved)

    def _still_halted(self) -> bool:
        """After HLT the CPU waits for an interrupt it accepts (SDM vol. 2A, HLT): a timer
        event that raises none does not end the HLT, as in QEMU and on KVM."""
        if self._halted and not (self._g.irq_line and lib.vmm_pending_interrupt(self._g)):
            return True
        self._halted = False
        return False

    def _note_halt(self, result: RunResult | None) -> RunResult | None:
        if result is not None and result.reason == StopReason.HALT and not self._hook_stop:
            self._halted = True
        return result

    def stop_from_hook(self) -> None:
        """Stop the engine from a hook of the debug capability (breakpoint, watch): to
        the glue that looks like a HLT, which this says it is not."""
        self._hook_stop = True
        self._engine.stop()

    def run(self, max_instructions: int) -> RunResult:
        g, c = self._g, self._c
        if self._still_halted():
            return RunResult(StopReason.HALT)
        g.deadline = c.insns + max(1, max_instructions)
        c.limit = 0
        self._block_run = True
        try:
            while True:
                failed = self._emulate()
                if failed is not None:
                    return failed
                result = self._note_halt(self._decode_stop())
                if result is not None:
                    return result
        finally:
            self._block_run = False

    def step(self, count: int = 1) -> RunResult:
        """Run exactly ``count`` instructions (fewer if the CPU halts or stops first).

        Uses Unicorn's counting mode, which instruments every instruction: for stepping
        and tracing only. Interrupts are still taken at block boundaries, so a timer IRQ
        due during the steps is delivered as in a normal run."""
        before = self._c.insns
        self._halted = False  # a step runs the next instruction, halted or not
        try:
            result, _counted = self.run_counted(count)
        finally:
            self.flush_translations()
        # The block hook counted whole blocks; the steps themselves are what retired.
        self._c.insns = before + count
        if result is not None and result.reason == StopReason.ERROR:
            self._c.insns = before
            return result
        if result is not None and result.reason in (StopReason.SHUTDOWN, StopReason.REQUESTED):
            return result
        return RunResult(StopReason.BREAKPOINT)

    def run_counted(self, count: int) -> tuple[RunResult | None, int]:
        """Run in Unicorn's counting mode, which stops after exactly ``count`` instructions
        (instrumenting each: the debugger's slow path). Returns the decoded stop (None:
        the count ran out, or nothing the machine must see) and the glue's whole-block
        count of what ran, which the caller trims (only the last block overshoots)."""
        g, c = self._g, self._c
        if self._still_halted():
            return RunResult(StopReason.HALT), 0
        # Unicorn adds its counting hook without dropping blocks translated before: a
        # cached loop would run on uncounted. Translate afresh with the hook.
        self.flush_translations()
        before = c.insns
        g.deadline = 0xFFFFFFFFFFFFFFFF
        c.limit = 0
        try:
            failed = self._emulate(count)
        finally:
            g.deadline = c.insns
            c.limit = 0
        if failed is not None:
            return failed, c.insns - before
        result = self._decode_stop()
        if result is not None and result.reason == StopReason.HALT and c.insns - before > count:
            # The glue counts the next block before the counting hook stops the run: an
            # overshoot means the count ran out, not that the CPU halted by itself.
            result = None
        return self._note_halt(result), c.insns - before

    def _emulate(self, count: int = 0) -> RunResult | None:
        """One emu_start from the current EIP; RunResult(ERROR) if Unicorn refused."""
        g = self._g
        g.stop_reason = lib.VMM_STOP_NONE
        g.delivering = -1
        self._hook_stop = False
        eip = lib.vmm_get_env_u64(g, lib.VMM_ENV_EIP)
        self._running = True
        try:
            status = self._engine.start(eip, count)
        finally:
            self._running = False
            self._settle_data_window()
        if status != 0:
            if self._error is not None:
                self._take_error()
            return RunResult(StopReason.ERROR, f"{describe(status)} at pc {self.get_state().pc:#x}")
        if self._a20_pending is not None:
            self._apply_a20()
        if self._error is not None:
            self._take_error()
        return None

    def _decode_stop(self) -> RunResult | None:
        """Why the last emu_start returned: the one place the glue's stop is decoded.

        None means nothing the machine must see (a #UD was delivered, or a stop cut an
        exception delivery short: running again finishes it). HALT means the engine
        stopped by itself: HLT (a counting run that used up its count looks the same to
        the glue; run_counted tells the two apart). A triple fault is a #DF whose own
        delivery failed: QEMU's check_exception shuts the CPU down with the glue still
        delivering vector 8 (SDM vol. 3, 6.15)."""
        g = self._g
        if g.delivering == VECTOR_DOUBLE_FAULT:
            return RunResult(StopReason.SHUTDOWN, "triple fault", self.fault_chain())
        reason = _GLUE_STOPS.get(g.stop_reason)
        if reason is not None:
            return RunResult(reason)
        if g.stop_reason == lib.VMM_STOP_RESUME or g.delivering != -1:
            return None
        return RunResult(StopReason.HALT)

    # ---- for the debug capability (vmm.cpu.unicorn_debug) ----

    def debug(self) -> UnicornDebug:
        from vmm.cpu.unicorn_debug import UnicornDebug

        return UnicornDebug(self)

    @property
    def engine(self) -> Any:
        """The engine as unicorn's binding sees it (a ``Uc``), for the hooks the debug
        capability adds; the binding is imported then, not before."""
        return self._engine.binding()

    @property
    def stop_pending(self) -> bool:
        """A stop (deadline, breakpoint, request...) is already decided in this run."""
        return self._g.stop_reason != lib.VMM_STOP_NONE

    def flush_translations(self) -> None:
        """Drop every translated block (hooks are compiled into them)."""
        self._engine.flush_tb()

    def block_icount(self, linear: int) -> int:
        """Instructions the glue counts for the translated block entered at ``linear``
        (0 if there is none)."""
        block = self._engine.block(linear)
        if block is None:
            return 0
        pc, icount = block
        return icount if pc == linear else 0

    def hflags(self) -> int:
        """QEMU's hflags: the CPU mode as the translator sees it."""
        return lib.vmm_get_env_u64(self._g, lib.VMM_ENV_HFLAGS)

    def linear_pc(self) -> int:
        """CS base + EIP, as X86State.pc, without reading the whole state (~10x dearer)."""
        g, seg = self._g, self._seg
        lib.vmm_get_seg(g, SEG_INDEX["cs"], seg)
        return (seg.base + lib.vmm_get_env_u64(g, lib.VMM_ENV_EIP)) & 0xFFFFFFFFFFFFFFFF

    def set_irq(self, line: int, level: bool) -> None:
        raise CpuError("the Unicorn backend has no in-kernel interrupt controller (use --irqchip user)")

    def fault_chain(self) -> list[tuple[int, int | None, int, bool]]:
        """The last exceptions and software interrupts entered (vector, error code or None,
        linear pc, whether it was an INT instruction), oldest first."""
        g = self._g
        count = min(g.fault_count, lib.VMM_FAULT_RING)
        chain = []
        for k in range(g.fault_count - count, g.fault_count):
            i = k % lib.VMM_FAULT_RING
            error = g.fault_error[i]
            chain.append((g.fault_vector[i], None if error < 0 else error & 0xFFFFFFFF, g.fault_pc[i],
                          bool(g.fault_soft[i])))  # fmt: skip
        return chain

    def _take_error(self) -> None:
        """An exception from a callback (a device model or the platform) ends the run:
        a VmmError reaches the user as one line, anything else is a bug in vmm."""
        error, self._error = self._error, None
        raise error

    def reset(self) -> None:
        self.set_state(X86State())
        self._c.insns = 0

    def invalidate_code(self, addr: int, length: int) -> None:
        """Guest RAM at physical ``addr`` changed behind the CPU's back (a device's DMA, a
        loader): drop translated code there, by host address (uc_glue.c says why)."""
        host = ffi.cast("void *", self._ram_address + addr)
        if lib.vmm_invalidate_host_range(self._g, host, length) != 0:
            raise CpuError(f"guest RAM {addr:#x}+{length:#x} is not mapped in Unicorn")

    def set_a20(self, enabled: bool) -> None:
        """The A20 gate. Unicorn ignores QEMU's A20 mask, so vmm shows what real-mode code
        can see of it: with A20 off, the 64 KiB above 1 MiB (FFFF:0010-FFFF:FFFF) alias
        the first 64 KiB. The mapping changes between runs, never inside a hook."""
        enabled = bool(enabled)
        lib.vmm_set_a20(self._g, 1 if enabled else 0)
        if enabled == self._a20:
            self._a20_pending = None
            return
        self._a20_pending = enabled
        if self._running:
            self._g.stop_reason = lib.VMM_STOP_RESUME
            self._engine.stop()
        else:
            self._apply_a20()

    def _apply_a20(self) -> None:
        enabled, self._a20_pending = self._a20_pending, None
        if enabled is None or enabled == self._a20:
            return
        self._a20 = enabled
        if self.memory.size < A20_WINDOW + A20_WINDOW_SIZE:
            return
        self._check(self._engine.unmap(A20_WINDOW, A20_WINDOW_SIZE), "unmap the A20 window")
        target = A20_WINDOW if enabled else 0
        self._map_ptr(A20_WINDOW, A20_WINDOW_SIZE, self._ram_address + target)
        self._engine.flush_tb()

    def close(self) -> None:
        if self._g is not None:
            self.memory.remove_write_listener(self.invalidate_code)
            self._engine.stop()
            lib.vmm_glue_free(self._g)
            self._g = None
            self._engine.close()


# The glue's calls into Python (port I/O, MMIO, INTA...), registered with cffi on import.
from vmm.cpu import unicorn_exits  # noqa: E402, F401 - after UnicornCpu, which it names
