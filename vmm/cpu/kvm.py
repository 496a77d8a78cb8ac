"""The KVM backend: the same PC on /dev/kvm, through cffi bindings of <linux/kvm.h>.

Setup follows the sequence in Documentation/virt/kvm/api.rst (and kvmtool, Firecracker):
CREATE_VM, SET_TSS_ADDR, SET_IDENTITY_MAP_ADDR, one memory slot per RAM or ROM region,
CREATE_VCPU, the kvm_run mmap, SET_CPUID2 from GET_SUPPORTED_CPUID, then the
architectural reset state (SDM vol. 3, 9.1.1). The interrupt controller stays in
userspace (the machine's 8259A pair): before each KVM_RUN the backend injects the vector
from ``platform.interrupt_acknowledge()`` when the guest can take it, or asks KVM for an
interrupt-window exit.

Time is not instruction-exact on KVM: there is no retired-instruction counter. Each
``run(n)`` is bounded by a host timer of n / clock_mhz microseconds, and ``instructions``
grows by the host time spent inside KVM_RUN times ``clock_mhz`` (plus one per exit), so
virtual time follows the time the guest really ran. Two runs of the same image do not
stop at the same instruction; the machine uses realtime clock mode with KVM.

Not emulated: A20 masking (recorded in the state, as QEMU on KVM), the virtual TSC offset
the machine adds while idling (KVM's TSC follows the host), and the fault chain of a
triple fault (KVM only reports the shutdown).
"""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from vmm.cpu.base import DebugUnsupported, Platform, RunResult, StopReason
from vmm.cpu.kvm_probe import bindings, open_kvm
from vmm.cpu.kvm_state import KVM_MSRS, KvmState
from vmm.cpu.kvm_vm import KvmVm, Slot
from vmm.cpu.state import MSR_IA32_PAT, RFLAGS_IF, X86State
from vmm.errors import CpuError
from vmm.memory import GuestMemory

if TYPE_CHECKING:
    from vmm.cpu.kvm_debug import KvmDebug

ffi, lib = bindings()

PAT_RESET = 0x0007040600070406
KVM_GUESTDBG_SINGLESTEP = 0x2  # <linux/kvm.h>
DEBUG_REGISTERS = 4  # DR0-DR3
DR6_BS = 1 << 14  # single-step trap (SDM vol. 3, 18.2.3)

_EXIT_NAMES = {
    getattr(lib, name): name
    for name in dir(lib)
    if name.startswith("KVM_EXIT_") and not name.startswith("KVM_EXIT_IO_")
}

_INTERNAL_ERRORS = {
    lib.KVM_INTERNAL_ERROR_EMULATION: "instruction emulation failed",
    lib.KVM_INTERNAL_ERROR_SIMUL_EX: "exception while delivering an exception",
    lib.KVM_INTERNAL_ERROR_DELIVERY_EV: "event delivery failed",
}


class KvmCpu(KvmVm, KvmState):
    """The CpuBackend on KVM (see vmm.cpu.base for the interface): the vCPU run loop
    and the interface here, VM and memory set-up from KvmVm, state from KvmState.

    ``regions``: the guest-physical map, either the machine's physical map (objects with
    ``base``, ``size``, ``kind`` in "ram", "rom", "device", "hole", ``ram_offset`` and
    ``data``, like vmm.cpu.unicorn.PhysRegion), or ROM images as ``(guest_phys, data,
    read_only)`` tuples, in which case all of GuestMemory is RAM from address 0 except
    where a ROM lies. ROMs are read-only memory slots (guest writes are dropped) unless
    ``writable_rom``. Devices and holes are left unmapped: accesses become MMIO exits.
    """

    name = "kvm"

    def __init__(self, memory: GuestMemory, platform: Platform, regions: Iterable | None = None,
                 clock_mhz: int = 100, *, writable_rom: bool = False, device: str | None = None,
                 irqchip: str = "user") -> None:  # fmt: skip
        if clock_mhz <= 0:
            raise ValueError("clock_mhz must be positive")
        if irqchip not in ("user", "kernel"):
            raise ValueError(f"irqchip must be 'user' or 'kernel', not {irqchip!r}")
        # "user": vmm's own PIC and PIT drive KVM_INTERRUPT (deterministic devices);
        # "kernel": KVM's in-kernel PIC, IOAPIC, LAPIC and PIT, fed by KVM_IRQ_LINE.
        self.irqchip = irqchip
        self.memory = memory
        self.platform = platform
        self.clock_mhz = clock_mhz
        self._deadline = 0  # the instruction count the run() under way ends at
        self._entropy = 0
        self._fds: list[int] = []
        self._rom_maps: list[mmap.mmap] = []
        self._run_map = ffi.NULL
        self._vcpu_struct = None
        self._slots: list[Slot] = []
        self._a20_slot: int | None = None
        self._ram_address = 0
        self._kvm = open_kvm(device)
        self._fds.append(self._kvm)
        try:
            self._create_vm(list(regions or []), writable_rom)
        except BaseException:
            self.close()
            raise
        # Progress accounting (see the module docstring).
        self._insns_base = 0
        self._exits = 0
        self._stats = {"exits": 0, "io": 0, "mmio": 0, "irqs": 0, "windows": 0, "dropped_rom_writes": 0}
        self._irq_line = False
        self._halted = False
        self._a20 = True
        self._needs_completion = False
        self._breakpoint: int | None = None  # the machine's stage breakpoint (DR0 when set)
        self._debug_breakpoints: list[int] = []  # the debugger's, in the other DRs
        self._single_step = False
        self.debug_stop_pc = 0  # where the last StopReason.DEBUG stopped (linear)
        self._watch_user = False
        self.reset()

    # ---- the interface ----

    # The guest's TSC follows the host's on KVM; the offset is kept so that state moves
    # between backends carry it.
    tsc_offset = 0

    @property
    def instructions(self) -> int:
        v = self._vcpu_struct
        return self._insns_base + self._exits + v.total_run_ns * self.clock_mhz // 1000

    @instructions.setter
    def instructions(self, value: int) -> None:
        self._insns_base += value - self.instructions

    @property
    def stats(self) -> dict[str, int]:
        v = self._vcpu_struct
        return dict(self._stats, runs=v.runs, guest_ns=v.total_run_ns)

    def set_irq_line(self, level: bool) -> None:
        self._irq_line = bool(level)

    def set_irq(self, line: int, level: bool) -> None:
        """With the in-kernel irqchip: a device's IRQ line (ISA IRQ 0-15) to KVM's PIC/IOAPIC."""
        irq = ffi.new("struct kvm_irq_level *")
        irq.irq, irq.level = line, 1 if level else 0
        self._check(lib.vmm_ioctl_ptr(self._vm, lib.KVM_IRQ_LINE, irq), f"set IRQ {line}")

    def request_stop(self) -> None:
        """Thread-safe: the current (or next) run returns StopReason.REQUESTED."""
        lib.vmm_kvm_vcpu_kick(self._vcpu_struct)

    def set_breakpoint(self, linear: int | None) -> None:
        """Stop (StopReason.BREAKPOINT) before the instruction at ``linear`` (one-shot),
        with a hardware breakpoint in DR0 owned by the host (KVM_SET_GUEST_DEBUG)."""
        self._breakpoint = linear
        self._apply_guest_debug()

    def watch_user_mode(self, enabled: bool) -> None:
        """Return StopReason.USER from a run that ends with the CPU at CPL 3.

        KVM cannot stop at the first user instruction as Unicorn does: the check is made
        when a run ends, so the transition is seen at the next exit or deadline.
        """
        self._watch_user = enabled

    def advance_tsc(self, ns: int) -> None:
        """Nothing to do: the guest TSC follows the host's clock on KVM."""

    @property
    def entropy_state(self) -> int:
        """RDRAND cannot be intercepted under KVM (no exit for it: CPUID leaves it out), so
        the generator's state is only carried here for a switch back to Unicorn."""
        return self._entropy

    @entropy_state.setter
    def entropy_state(self, value: int) -> None:
        self._entropy = value

    def limit_run(self, instructions: int) -> None:
        """A timer armed by an exit handler: the next KVM_RUN of this run() ends there."""
        self._deadline = min(self._deadline, instructions)

    def run(self, max_instructions: int) -> RunResult:
        self._deadline = self.instructions + max(1, max_instructions)
        try:
            result = self._run_until()
        finally:
            self._complete_pending_exit()
            self._deadline = 0
        # Never in place of REQUESTED: the machine acts on it (exit port, reset).
        if self._watch_user and result.reason in (StopReason.DEADLINE, StopReason.HALT) and self._cpl() == 3:
            return RunResult(StopReason.USER)
        return result

    def _run_until(self) -> RunResult:
        v, run = self._vcpu_struct, self._run
        if v.stop_requested:
            v.stop_requested = 0
            return RunResult(StopReason.REQUESTED)
        if self._halted:
            if not (self._irq_line and self._get_regs().rflags & RFLAGS_IF):
                return RunResult(StopReason.HALT)
            self._halted = False
        while True:
            remaining = self._deadline - self.instructions
            if remaining <= 0:
                return RunResult(StopReason.DEADLINE)
            self._offer_interrupt()
            budget_ns = -(-remaining * 1000 // self.clock_mhz)
            rc = lib.vmm_kvm_vcpu_run(v, budget_ns)
            self._needs_completion = False
            if rc == -errno.EINTR or (rc == 0 and run.exit_reason == lib.KVM_EXIT_INTR):
                if v.stop_requested:
                    v.stop_requested = 0
                    run.immediate_exit = 0
                    return RunResult(StopReason.REQUESTED)
                continue  # the deadline timer, or a signal for someone else
            if rc < 0:
                return RunResult(StopReason.ERROR, f"KVM_RUN failed: {os.strerror(-rc)}")
            self._exits += 1
            self._stats["exits"] += 1
            result = self._handle_exit(run.exit_reason)
            if result is not None:
                return result
            if v.stop_requested:  # a device asked during the exit (exit port, reset)
                v.stop_requested = 0
                return RunResult(StopReason.REQUESTED)

    def _handle_exit(self, reason: int) -> RunResult | None:
        if reason == lib.KVM_EXIT_IO:
            self._stats["io"] += 1
            self._handle_io()
            return None
        if reason == lib.KVM_EXIT_MMIO:
            self._stats["mmio"] += 1
            self._handle_mmio()
            return None
        if reason == lib.KVM_EXIT_IRQ_WINDOW_OPEN:
            self._stats["windows"] += 1
            return None
        if reason == lib.KVM_EXIT_HLT:
            self._halted = True
            return RunResult(StopReason.HALT)
        if reason == lib.KVM_EXIT_SHUTDOWN:
            return RunResult(StopReason.SHUTDOWN, f"triple fault (pc {self.get_state().pc:#x} after the shutdown)")
        if reason == lib.KVM_EXIT_DEBUG:
            return self._debug_exit(lib.vmm_run_debug(self._run).arch)
        if reason == lib.KVM_EXIT_SYSTEM_EVENT:
            event = lib.vmm_run_system_event(self._run)
            if event.type in (lib.KVM_SYSTEM_EVENT_SHUTDOWN, lib.KVM_SYSTEM_EVENT_RESET):
                return RunResult(StopReason.SHUTDOWN, f"KVM system event {event.type}")
            return RunResult(StopReason.ERROR, f"KVM system event {event.type} (crash)")
        if reason == lib.KVM_EXIT_FAIL_ENTRY:
            fail = lib.vmm_run_fail_entry(self._run)
            return RunResult(StopReason.ERROR, f"KVM could not enter the guest (hardware reason "
                             f"{fail.hardware_entry_failure_reason:#x}) at pc {self._pc():#x}")  # fmt: skip
        if reason == lib.KVM_EXIT_INTERNAL_ERROR:
            internal = lib.vmm_run_internal(self._run)
            data = " ".join(f"{internal.data[i]:#x}" for i in range(min(internal.ndata, 16)))
            what = _INTERNAL_ERRORS.get(internal.suberror, f"suberror {internal.suberror}")
            return RunResult(StopReason.ERROR, f"KVM internal error: {what} at pc {self._pc():#x} [{data}]")
        name = _EXIT_NAMES.get(reason, str(reason))
        return RunResult(StopReason.ERROR, f"unexpected KVM exit {name} at pc {self._pc():#x}")

    def _handle_io(self) -> None:
        io, platform = self._io, self.platform
        size, port, count = io.size, io.port, io.count
        offset = io.data_offset
        if offset + size * count > self._run_size:
            raise CpuError(f"KVM reported I/O data outside kvm_run ({offset:#x}+{size * count:#x})")
        data = self._run_bytes
        if count > 1 and hasattr(platform, "io_read_string"):
            # A string instruction (rep ins/outs): KVM hands over up to a page of it at
            # once, and the platform takes it in one call.
            end = offset + size * count
            if io.direction == lib.KVM_EXIT_IO_OUT:
                platform.io_write_string(port, size, bytes(data[offset:end]))
            else:
                got = platform.io_read_string(port, size, count)[: end - offset]
                data[offset:end] = got.ljust(end - offset, b"\xff")
        elif io.direction == lib.KVM_EXIT_IO_OUT:
            for i in range(count):
                at = offset + i * size
                platform.io_write(port, size, int.from_bytes(data[at : at + size], "little"))
        else:
            mask = (1 << (8 * size)) - 1
            for i in range(count):
                at = offset + i * size
                data[at : at + size] = (platform.io_read(port, size) & mask).to_bytes(size, "little")
        self._needs_completion = True

    def _handle_mmio(self) -> None:
        mmio = self._mmio
        addr, size = mmio.phys_addr, mmio.len
        if size not in (1, 2, 4, 8):
            raise CpuError(f"KVM reported an MMIO access of {size} bytes at {addr:#x}")
        if mmio.is_write:
            if self._in_rom(addr):
                self._stats["dropped_rom_writes"] += 1  # a write to ROM goes nowhere
            else:
                value = int.from_bytes(bytes(ffi.buffer(mmio.data, size)), "little")
                self.platform.mmio_write(addr, size, value)
        else:
            value = self.platform.mmio_read(addr, size) & ((1 << (8 * size)) - 1)
            ffi.buffer(mmio.data, 8)[0:size] = value.to_bytes(size, "little")
        self._needs_completion = True

    def _in_rom(self, addr: int) -> bool:
        return any(slot.read_only and slot.base <= addr < slot.base + slot.size for slot in self._slots)

    def _complete_pending_exit(self) -> None:
        """Re-enter KVM_RUN with immediate_exit set: KVM finishes the I/O or MMIO
        instruction of the last exit (an IN writes its register, RIP moves on) without
        running further, so the state read afterwards is consistent (api.rst, KVM_RUN)."""
        if not self._needs_completion:
            return
        run = self._run
        run.request_interrupt_window = 0
        run.immediate_exit = 1
        rc = lib.vmm_kvm_vcpu_run(self._vcpu_struct, 0)
        run.immediate_exit = 1 if self._vcpu_struct.stop_requested else 0
        self._needs_completion = False
        if rc not in (0, -errno.EINTR):
            raise CpuError(f"KVM could not complete the last I/O exit: {os.strerror(-rc)}")

    def _offer_interrupt(self) -> None:
        """The INTR line is high: inject now if the guest can take an interrupt, else ask
        for an exit when it can (Documentation/virt/kvm/api.rst, KVM_INTERRUPT)."""
        run = self._run
        if not self._irq_line:
            run.request_interrupt_window = 0
            return
        if run.ready_for_interrupt_injection and run.if_flag:
            vector = self.platform.interrupt_acknowledge()
            if vector < 0:  # the local APIC withdrew it (vmm's APIC on `pc`): nothing to inject
                return
            irq = ffi.new("struct kvm_interrupt *", {"irq": vector & 0xFF})
            self._check(lib.vmm_ioctl_ptr(self._vcpu, lib.KVM_INTERRUPT, irq), f"inject interrupt {vector:#x}")
            self._stats["irqs"] += 1
            # The injection is consumed at entry; the next exit tells whether to ask again.
            run.ready_for_interrupt_injection = 0
            run.request_interrupt_window = 0
        else:
            run.request_interrupt_window = 1

    def _apply_guest_debug(self) -> None:
        """Hardware breakpoints in DR0-DR3 (the stage breakpoint first) and single-step,
        owned by the host (KVM_SET_GUEST_DEBUG; SDM vol. 3, 18.2: DR7 L0-L3, R/W = 00:
        instruction execution, LEN = 00)."""
        addresses = ([] if self._breakpoint is None else [self._breakpoint]) + self._debug_breakpoints
        if len(addresses) > DEBUG_REGISTERS:
            raise DebugUnsupported(f"KVM has {DEBUG_REGISTERS} hardware breakpoints; "
                                   f"{len(addresses)} are asked for (delete one)")  # fmt: skip
        debug = ffi.new("struct kvm_guest_debug *")
        if addresses or self._single_step:
            debug.control = lib.KVM_GUESTDBG_ENABLE
            if addresses:
                debug.control |= lib.KVM_GUESTDBG_USE_HW_BP
            if self._single_step:
                debug.control |= KVM_GUESTDBG_SINGLESTEP
            dr7 = 0
            for i, address in enumerate(addresses):
                debug.arch.debugreg[i] = address
                dr7 |= 1 << (2 * i)
            debug.arch.debugreg[7] = dr7
        self._check(lib.vmm_ioctl_ptr(self._vcpu, lib.KVM_SET_GUEST_DEBUG, debug), "set a hardware breakpoint")

    def _debug_exit(self, arch) -> RunResult:
        hits = arch.dr6 & 0xF
        if self._breakpoint is not None and hits & 1:
            self._breakpoint = None
            self._apply_guest_debug()
            return RunResult(StopReason.BREAKPOINT)
        if hits or (self._single_step and arch.dr6 & DR6_BS):
            self.debug_stop_pc = arch.pc
            return RunResult(StopReason.DEBUG, "breakpoint" if hits else "step")
        return RunResult(StopReason.ERROR, f"unexpected debug exit (exception {arch.exception}, pc {arch.pc:#x})")

    def set_guest_debug(self, breakpoints: list[int], single_step: bool) -> None:
        """The debug capability's hardware breakpoints and single-step (vmm.cpu.kvm_debug)."""
        self._debug_breakpoints, self._single_step = list(breakpoints), single_step
        self._apply_guest_debug()

    def reset(self) -> None:
        """Architectural reset (SDM vol. 3, 9.1.1): real mode, CS:IP = F000:FFF0."""
        self._needs_completion = False
        state = X86State()
        state.msrs = {msr: 0 for msr in KVM_MSRS} | {MSR_IA32_PAT: PAT_RESET}
        self.set_state(state)
        self._halted = False
        self.instructions = 0  # as the Unicorn backend: a reset restarts the count

    def invalidate_code(self, addr: int, length: int) -> None:
        """Nothing to drop: KVM runs guest code natively."""

    def fault_chain(self) -> list[tuple[int, int | None, int, bool]]:
        """KVM reports a shutdown, not the exceptions that led to it."""
        return []

    def unclaimed_memory(self) -> tuple[int, list[tuple[int, str]]]:
        """None answered here: every access outside the slots is an MMIO exit to the bus."""
        return 0, []

    def debug(self) -> KvmDebug:
        from vmm.cpu.kvm_debug import KvmDebug

        return KvmDebug(self)

    def close(self) -> None:
        if self._vcpu_struct is not None:
            lib.vmm_kvm_vcpu_fini(self._vcpu_struct)
            self._vcpu_struct = None
        if self._run_map != ffi.NULL:
            lib.munmap(self._run_map, self._run_size)
            self._run_map = ffi.NULL
        for fd in reversed(self._fds):
            os.close(fd)
        self._fds = []
        for buffer in self._rom_maps:
            buffer.close()
        self._rom_maps = []
