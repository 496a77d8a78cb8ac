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
from dataclasses import dataclass

from vmm.cpu.base import A20_WINDOW, A20_WINDOW_SIZE, DebugUnsupported, Platform, RunResult, StopReason
from vmm.cpu.kvm_probe import _bindings, open_kvm
from vmm.cpu.state import (
    ATTR_AVL,
    ATTR_DB,
    ATTR_DPL_SHIFT,
    ATTR_G,
    ATTR_L,
    ATTR_P,
    ATTR_S,
    ATTR_TYPE_MASK,
    GPR_NAMES,
    MSR_IA32_PAT,
    MSR_IA32_TSC,
    RFLAGS_IF,
    SAVED_MSRS,
    SEGMENT_NAMES,
    Segment,
    Table,
    X86State,
)
from vmm.errors import BackendUnavailable, CpuError
from vmm.memory import GuestMemory

ffi, lib = _bindings()

PAGE = 4096
TSS_ADDR = 0xFFFBD000  # three pages KVM needs for real-mode emulation on VMX
IDENTITY_MAP_ADDR = 0xFFFBC000  # one page: the identity page table for unpaged guests on EPT
PAT_RESET = 0x0007040600070406
KVM_MSRS = (*SAVED_MSRS, MSR_IA32_TSC)  # the TSC too, so that a restore keeps guest time
XSTATE_BV_OFFSET = 512  # XSAVE header: which components the image holds (SDM vol. 1, 13.4.2)
XSTATE_X87_SSE = 0x3
FXSAVE_RESET = (0x037F).to_bytes(2, "little") + bytes(22) + (0x1F80).to_bytes(4, "little") + bytes(484)

# CPUID bits (SDM vol. 2A, CPUID) that describe hardware this machine does not have.
CPUID1_ECX_X2APIC = 1 << 21
CPUID1_ECX_TSC_DEADLINE = 1 << 24
CPUID1_EDX_APIC = 1 << 9
KVM_CPUID_FEATURES = 0x40000001
# RDRAND and RDSEED read the host's entropy and KVM offers no exit to answer them from
# machine state (VMX's "RDRAND exiting" is not exposed to userspace): they are hidden.
CPUID1_ECX_RDRAND = 1 << 30
CPUID7_EBX_RDSEED = 1 << 18
# The brand string is vmm's, as on Unicorn (csrc/uc_glue.c), not the host's.
CPU_BRAND = b"vmm virtual x86-64 CPU".ljust(48, b"\0")
# KVM paravirtual features that work without an in-kernel local APIC: kvmclock (0, 3),
# NOP_IO_DELAY (1), CLOCKSOURCE_STABLE (24). The others (PV EOI, PV IPIs, async page
# faults, ...) deliver through the APIC.
KVM_PV_FEATURES_KEPT = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 24)

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


@dataclass(frozen=True)
class _Slot:
    base: int
    size: int
    host_addr: int
    read_only: bool


class KvmCpu:
    """The CpuBackend on KVM (see vmm.cpu.base for the interface).

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
        self._slots: list[_Slot] = []
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
        self._breakpoint: int | None = None
        self._watch_user = False
        self.reset()

    # ---- construction ----

    def _check(self, rc: int, what: str) -> int:
        if rc < 0:
            raise CpuError(f"KVM cannot {what}: {os.strerror(-rc)}")
        return rc

    def _has(self, cap: int) -> bool:
        return lib.vmm_ioctl_int(self._vm if hasattr(self, "_vm") else self._kvm, lib.KVM_CHECK_EXTENSION, cap) > 0

    def _create_vm(self, regions: list, writable_rom: bool) -> None:
        required = ((lib.KVM_CAP_USER_MEMORY, "user memory"), (lib.KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR"),
                    (lib.KVM_CAP_EXT_CPUID, "CPUID2"), (lib.KVM_CAP_IMMEDIATE_EXIT, "immediate_exit"))  # fmt: skip
        for cap, what in required:
            if not self._has(cap):
                raise CpuError(f"this KVM lacks {what} (KVM_CHECK_EXTENSION), which vmm needs")
        self._vm = self._check(lib.vmm_ioctl_int(self._kvm, lib.KVM_CREATE_VM, 0), "create a VM")
        self._fds.append(self._vm)
        self._check(lib.vmm_ioctl_int(self._vm, lib.KVM_SET_TSS_ADDR, TSS_ADDR), "set the TSS address")
        if self._has(lib.KVM_CAP_SET_IDENTITY_MAP_ADDR):
            addr = ffi.new("uint64_t *", IDENTITY_MAP_ADDR)
            self._check(lib.vmm_ioctl_ptr(self._vm, lib.KVM_SET_IDENTITY_MAP_ADDR, addr), "set the identity map")
        self._has_readonly = self._has(lib.KVM_CAP_READONLY_MEM)
        self._has_xsave = self._has(lib.KVM_CAP_XSAVE)
        self._has_debugregs = self._has(lib.KVM_CAP_DEBUGREGS)
        self._has_events = self._has(lib.KVM_CAP_VCPU_EVENTS)
        self._map_memory(regions, writable_rom)
        if self.irqchip == "kernel":
            self._create_kernel_irqchip()
        self._vcpu = self._check(lib.vmm_ioctl_int(self._vm, lib.KVM_CREATE_VCPU, 0), "create a vCPU")
        self._fds.append(self._vcpu)
        size = self._check(lib.vmm_ioctl_int(self._kvm, lib.KVM_GET_VCPU_MMAP_SIZE, 0), "size kvm_run")
        ptr = lib.mmap(ffi.NULL, size, lib.PROT_READ | lib.PROT_WRITE, lib.MAP_SHARED, self._vcpu, 0)
        if int(ffi.cast("intptr_t", ptr)) == -1:
            raise CpuError(f"cannot mmap kvm_run: {os.strerror(ffi.errno)}")
        self._run_map, self._run_size = ptr, size
        self._run = ffi.cast("struct kvm_run *", ptr)
        self._run_bytes = ffi.buffer(ptr, size)
        self._io = lib.vmm_run_io(self._run)
        self._mmio = lib.vmm_run_mmio(self._run)
        vcpu = ffi.new("struct vmm_kvm_vcpu *")
        self._check(lib.vmm_kvm_vcpu_init(vcpu, self._vcpu, self._run), "set up the vCPU deadline timer")
        self._vcpu_struct = vcpu
        self._set_cpuid()

    def _map_memory(self, regions: list, writable_rom: bool) -> None:
        ram_base = self._buffer_address(self.memory.mmap)
        roms: list[tuple[int, bytes, bool]] = []
        rams: list[tuple[int, int, int]] = []  # (guest base, size, offset in GuestMemory)
        for region in regions:
            if isinstance(region, tuple):
                base, data, read_only = region
                roms.append((base, bytes(data), bool(read_only)))
            elif region.kind == "ram":
                self.memory.check(region.ram_offset, region.size)
                rams.append((region.base, region.size, region.ram_offset))
            elif region.kind == "rom":
                roms.append((region.base, bytes(region.data), not writable_rom))
            elif region.kind not in ("device", "hole"):
                raise ValueError(f"unknown region kind {region.kind!r}")
        if not rams:
            rams = _ram_around(self.memory.size, [(base, _page_up(len(data))) for base, data, _ in roms])
        slot_ranges = []
        for base, size, offset in rams:
            # The 64 KiB above 1 MiB get a slot of their own: the A20 gate re-points it.
            for start, end in _split_at(base, base + size, (A20_WINDOW, A20_WINDOW + A20_WINDOW_SIZE)):
                slot_ranges.append((start, end - start, ram_base + offset + (start - base), False))
        for base, data, read_only in roms:
            if base % PAGE:
                raise ValueError(f"ROM at {base:#x} is not page-aligned")
            size = _page_up(len(data))
            buffer = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            buffer[:] = data.ljust(size, b"\xff")
            self._rom_maps.append(buffer)
            slot_ranges.append((base, size, self._buffer_address(buffer), read_only and self._has_readonly))
        region = ffi.new("struct kvm_userspace_memory_region *")
        for index, (base, size, host, read_only) in enumerate(sorted(slot_ranges)):
            if base % PAGE or size % PAGE or host % PAGE:
                raise ValueError(f"guest memory region {base:#x}+{size:#x} is not page-aligned")
            region.slot = index
            region.flags = lib.KVM_MEM_READONLY if read_only else 0
            region.guest_phys_addr = base
            region.memory_size = size
            region.userspace_addr = host
            self._check(lib.vmm_ioctl_ptr(self._vm, lib.KVM_SET_USER_MEMORY_REGION, region),
                        f"map guest memory {base:#x}+{size:#x}")  # fmt: skip
            self._slots.append(_Slot(base, size, host, read_only))
            if base == A20_WINDOW and size == A20_WINDOW_SIZE:
                self._a20_slot = index
        self._ram_address = ram_base

    @staticmethod
    def _buffer_address(buffer) -> int:
        # The address outlives the cffi view: the buffer itself stays mapped until close().
        view = ffi.from_buffer(buffer)
        try:
            return int(ffi.cast("uintptr_t", view))
        finally:
            ffi.release(view)

    def _set_cpuid(self) -> None:
        count = 128
        while True:
            cpuid = ffi.new("struct kvm_cpuid2 *", {"nent": count, "entries": count})
            rc = lib.vmm_ioctl_ptr(self._kvm, lib.KVM_GET_SUPPORTED_CPUID, cpuid)
            if rc == -errno.E2BIG and count < 4096:
                count *= 2
                continue
            self._check(rc, "report its CPUID")
            break
        for i in range(cpuid.nent):
            entry = cpuid.entries[i]
            if entry.function == 1:
                # No local APIC: the PC's interrupts come from the 8259A pair.
                entry.ecx &= ~(CPUID1_ECX_X2APIC | CPUID1_ECX_TSC_DEADLINE | CPUID1_ECX_RDRAND) & 0xFFFFFFFF
                entry.edx &= ~CPUID1_EDX_APIC & 0xFFFFFFFF
                entry.ebx &= 0x0000FFFF  # initial APIC id 0
                entry.ebx |= 1 << 16  # one logical processor
            elif entry.function == 7 and entry.index == 0:
                entry.ebx &= ~CPUID7_EBX_RDSEED & 0xFFFFFFFF
            elif 0x80000002 <= entry.function <= 0x80000004:
                part = CPU_BRAND[16 * (entry.function - 0x80000002) :][:16]
                entry.eax, entry.ebx, entry.ecx, entry.edx = (
                    int.from_bytes(part[i : i + 4], "little") for i in range(0, 16, 4))
            elif entry.function == KVM_CPUID_FEATURES:
                entry.eax &= KVM_PV_FEATURES_KEPT
        self._check(lib.vmm_ioctl_ptr(self._vcpu, lib.KVM_SET_CPUID2, cpuid), "set the guest CPUID")

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

    def _create_kernel_irqchip(self) -> None:
        """KVM's PIC pair, IOAPIC and (per vCPU) LAPIC, and its 8254: before the vCPU exists."""
        for cap, what in ((lib.KVM_CAP_IRQCHIP, "an in-kernel irqchip"), (lib.KVM_CAP_PIT2, "an in-kernel PIT")):
            if not self._has(cap):
                raise BackendUnavailable(f"this KVM has no {what}: use --irqchip user")
        self._check(lib.vmm_ioctl_int(self._vm, lib.KVM_CREATE_IRQCHIP, 0), "create the in-kernel irqchip")
        config = ffi.new("struct kvm_pit_config *")
        self._check(lib.vmm_ioctl_ptr(self._vm, lib.KVM_CREATE_PIT2, config), "create the in-kernel PIT")

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

    def set_a20(self, enabled: bool) -> None:
        """KVM has no A20 gate: like the Unicorn backend, vmm shows what real-mode code can
        see of it by re-pointing the slot of the 64 KiB above 1 MiB at the first 64 KiB.
        Called from an exit handler, between KVM_RUN calls, when slots may change."""
        enabled = bool(enabled)
        if enabled == self._a20:
            return
        self._a20 = enabled
        if self._a20_slot is None:
            return
        region = ffi.new("struct kvm_userspace_memory_region *")
        region.slot = self._a20_slot
        region.guest_phys_addr = A20_WINDOW
        region.memory_size = 0  # delete, then map again: KVM cannot move a slot's host memory
        self._check(lib.vmm_ioctl_ptr(self._vm, lib.KVM_SET_USER_MEMORY_REGION, region), "unmap the A20 window")
        region.memory_size = A20_WINDOW_SIZE
        region.userspace_addr = self._ram_address + (A20_WINDOW if enabled else 0)
        self._check(lib.vmm_ioctl_ptr(self._vm, lib.KVM_SET_USER_MEMORY_REGION, region), "map the A20 window")

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
            arch = lib.vmm_run_debug(self._run).arch
            if self._breakpoint is not None and arch.dr6 & 1:
                self._breakpoint = None
                self._apply_guest_debug()
                return RunResult(StopReason.BREAKPOINT)
            return RunResult(StopReason.ERROR, f"unexpected debug exit (exception {arch.exception}, pc {arch.pc:#x})")
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
        if io.direction == lib.KVM_EXIT_IO_OUT:
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
            vector = self.platform.interrupt_acknowledge() & 0xFF
            irq = ffi.new("struct kvm_interrupt *", {"irq": vector})
            self._check(lib.vmm_ioctl_ptr(self._vcpu, lib.KVM_INTERRUPT, irq), f"inject interrupt {vector:#x}")
            self._stats["irqs"] += 1
            # The injection is consumed at entry; the next exit tells whether to ask again.
            run.ready_for_interrupt_injection = 0
            run.request_interrupt_window = 0
        else:
            run.request_interrupt_window = 1

    def _apply_guest_debug(self) -> None:
        debug = ffi.new("struct kvm_guest_debug *")
        if self._breakpoint is not None:
            debug.control = lib.KVM_GUESTDBG_ENABLE | lib.KVM_GUESTDBG_USE_HW_BP
            debug.arch.debugreg[0] = self._breakpoint
            debug.arch.debugreg[7] = 0x1  # L0: DR0, instruction execution, 1 byte
        self._check(lib.vmm_ioctl_ptr(self._vcpu, lib.KVM_SET_GUEST_DEBUG, debug), "set a hardware breakpoint")

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

    def fault_chain(self) -> list[tuple[int, int | None, int]]:
        """KVM reports a shutdown, not the exceptions that led to it."""
        return []

    def unclaimed_memory(self) -> tuple[int, list[tuple[int, str]]]:
        """None answered here: every access outside the slots is an MMIO exit to the bus."""
        return 0, []

    def debug(self):
        raise DebugUnsupported("the debugger needs the Unicorn backend (--accel unicorn)")

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

    # ---- state ----

    def _get(self, request: int, ctype: str, what: str):
        value = ffi.new(ctype)
        self._check(lib.vmm_ioctl_ptr(self._vcpu, request, value), what)
        return value

    def _set(self, request: int, value, what: str) -> None:
        self._check(lib.vmm_ioctl_ptr(self._vcpu, request, value), what)

    def _get_regs(self):
        return self._get(lib.KVM_GET_REGS, "struct kvm_regs *", "read the registers")

    def _pc(self) -> int:
        try:
            return self.get_state().pc
        except CpuError:
            return 0

    def _cpl(self) -> int:
        sregs = self._get(lib.KVM_GET_SREGS, "struct kvm_sregs *", "read the segment registers")
        return sregs.cs.dpl if sregs.cr0 & 1 else 0

    def get_state(self) -> X86State:
        state = X86State()
        regs = self._get_regs()
        state.gprs = {name: getattr(regs, name) for name in GPR_NAMES}
        state.rip, state.rflags = regs.rip, regs.rflags
        sregs = self._get(lib.KVM_GET_SREGS, "struct kvm_sregs *", "read the segment registers")
        state.segments = {name: _segment_from_kvm(getattr(sregs, name)) for name in SEGMENT_NAMES}
        state.ldt = _segment_from_kvm(sregs.ldt)
        state.tr = _segment_from_kvm(sregs.tr)
        state.gdt = Table(sregs.gdt.base, sregs.gdt.limit)
        state.idt = Table(sregs.idt.base, sregs.idt.limit)
        state.cr0, state.cr2, state.cr3, state.cr4, state.cr8 = sregs.cr0, sregs.cr2, sregs.cr3, sregs.cr4, sregs.cr8
        state.efer = sregs.efer
        state.fxsave = self._read_fxsave()
        state.msrs = self._read_msrs()
        state.dr = self._read_debugregs()
        state.halted = self._halted
        state.a20_enabled = self._a20
        if self._has_events:
            self._read_events(state)
        return state

    def set_state(self, state: X86State) -> None:
        """Load ``state`` in Firecracker's restore order: MP_STATE, REGS, SREGS, XSAVE,
        DEBUGREGS, MSRS, VCPU_EVENTS (SET_REGS and SET_SREGS clear pending events)."""
        self._needs_completion = False
        mp = ffi.new("struct kvm_mp_state *", {"mp_state": lib.KVM_MP_STATE_RUNNABLE})
        self._set(lib.KVM_SET_MP_STATE, mp, "set the MP state")
        regs = ffi.new("struct kvm_regs *")
        for name in GPR_NAMES:
            setattr(regs, name, state.gprs.get(name, 0))
        regs.rip, regs.rflags = state.rip, state.rflags | 0x2
        self._set(lib.KVM_SET_REGS, regs, "set the registers")
        sregs = self._get(lib.KVM_GET_SREGS, "struct kvm_sregs *", "read the segment registers")
        for name in SEGMENT_NAMES:
            _segment_to_kvm(state.segments[name], getattr(sregs, name))
        _segment_to_kvm(state.ldt, sregs.ldt)
        _segment_to_kvm(state.tr, sregs.tr)
        sregs.gdt.base, sregs.gdt.limit = state.gdt.base, state.gdt.limit
        sregs.idt.base, sregs.idt.limit = state.idt.base, state.idt.limit
        sregs.cr0, sregs.cr2, sregs.cr3, sregs.cr4, sregs.cr8 = state.cr0, state.cr2, state.cr3, state.cr4, state.cr8
        sregs.efer = state.efer
        for i in range(len(sregs.interrupt_bitmap)):
            sregs.interrupt_bitmap[i] = 0
        self._set(lib.KVM_SET_SREGS, sregs, "set the segment registers (is the state valid for VMX?)")
        self._write_fxsave(state.fxsave or FXSAVE_RESET)
        self._write_debugregs(state.dr)
        self._write_msrs({msr: value for msr, value in state.msrs.items() if msr in KVM_MSRS})
        if self._has_events:
            self._write_events(state)
        self._halted = state.halted
        self.set_a20(state.a20_enabled)
        # Stale exit information must not drive the next injection.
        self._run.ready_for_interrupt_injection = 0
        self._run.request_interrupt_window = 0

    def _read_fxsave(self) -> bytes:
        if self._has_xsave:
            xsave = self._get(lib.KVM_GET_XSAVE, "struct kvm_xsave *", "read the FPU/SSE state")
            return bytes(ffi.buffer(xsave.region, 512))
        fpu = self._get(lib.KVM_GET_FPU, "struct kvm_fpu *", "read the FPU state")
        image = bytearray(512)
        image[0:2] = fpu.fcw.to_bytes(2, "little")
        image[2:4] = fpu.fsw.to_bytes(2, "little")
        image[4] = fpu.ftwx
        image[6:8] = fpu.last_opcode.to_bytes(2, "little")
        image[8:16] = fpu.last_ip.to_bytes(8, "little")
        image[16:24] = fpu.last_dp.to_bytes(8, "little")
        image[24:28] = fpu.mxcsr.to_bytes(4, "little")
        image[28:32] = (0xFFFF).to_bytes(4, "little")
        image[32:160] = bytes(ffi.buffer(fpu.fpr, 128))
        image[160:416] = bytes(ffi.buffer(fpu.xmm, 256))
        return bytes(image)

    def _write_fxsave(self, image: bytes) -> None:
        if len(image) != 512:
            raise CpuError(f"an FXSAVE image is 512 bytes, not {len(image)}")
        if self._has_xsave:
            xsave = self._get(lib.KVM_GET_XSAVE, "struct kvm_xsave *", "read the FPU/SSE state")
            region = ffi.buffer(xsave.region, 4096)
            region[0:512] = image
            bv = int.from_bytes(region[XSTATE_BV_OFFSET : XSTATE_BV_OFFSET + 8], "little") | XSTATE_X87_SSE
            region[XSTATE_BV_OFFSET : XSTATE_BV_OFFSET + 8] = bv.to_bytes(8, "little")
            self._set(lib.KVM_SET_XSAVE, xsave, "set the FPU/SSE state (is MXCSR valid?)")
            return
        fpu = ffi.new("struct kvm_fpu *")
        fpu.fcw = int.from_bytes(image[0:2], "little")
        fpu.fsw = int.from_bytes(image[2:4], "little")
        fpu.ftwx = image[4]
        fpu.last_opcode = int.from_bytes(image[6:8], "little")
        fpu.last_ip = int.from_bytes(image[8:16], "little")
        fpu.last_dp = int.from_bytes(image[16:24], "little")
        fpu.mxcsr = int.from_bytes(image[24:28], "little")
        ffi.buffer(fpu.fpr, 128)[:] = image[32:160]
        ffi.buffer(fpu.xmm, 256)[:] = image[160:416]
        self._set(lib.KVM_SET_FPU, fpu, "set the FPU state")

    def _read_msrs(self) -> dict[int, int]:
        msrs = ffi.new("struct kvm_msrs *", {"nmsrs": len(KVM_MSRS), "entries": len(KVM_MSRS)})
        for i, index in enumerate(KVM_MSRS):
            msrs.entries[i].index = index
        got = self._check(lib.vmm_ioctl_ptr(self._vcpu, lib.KVM_GET_MSRS, msrs), "read the MSRs")
        return {msrs.entries[i].index: msrs.entries[i].data for i in range(got)}

    def _write_msrs(self, values: dict[int, int]) -> None:
        msrs = ffi.new("struct kvm_msrs *", {"nmsrs": len(values), "entries": len(values)})
        for i, (index, value) in enumerate(values.items()):
            msrs.entries[i].index = index
            msrs.entries[i].data = value
        done = self._check(lib.vmm_ioctl_ptr(self._vcpu, lib.KVM_SET_MSRS, msrs), "set the MSRs")
        if done != len(values):
            index = list(values)[done]
            raise CpuError(f"KVM refused MSR {index:#x} = {values[index]:#x}")

    def _read_debugregs(self) -> list[int]:
        if not self._has_debugregs:
            return X86State().dr
        dbg = self._get(lib.KVM_GET_DEBUGREGS, "struct kvm_debugregs *", "read the debug registers")
        return [dbg.db[0], dbg.db[1], dbg.db[2], dbg.db[3], dbg.dr6, dbg.dr7]

    def _write_debugregs(self, dr: list[int]) -> None:
        if not self._has_debugregs:
            return
        dbg = ffi.new("struct kvm_debugregs *")
        for i in range(4):
            dbg.db[i] = dr[i]
        dbg.dr6, dbg.dr7 = dr[4], dr[5]
        self._set(lib.KVM_SET_DEBUGREGS, dbg, "set the debug registers")

    def _read_events(self, state: X86State) -> None:
        """Pending events, for the X86State fields that carry them when present
        (``pending_interrupt``, ``interrupt_shadow``, ``nmi_pending``)."""
        events = self._get(lib.KVM_GET_VCPU_EVENTS, "struct kvm_vcpu_events *", "read pending events")
        if hasattr(state, "pending_interrupt"):
            state.pending_interrupt = events.interrupt.nr if events.interrupt.injected else None
        if hasattr(state, "interrupt_shadow"):
            state.interrupt_shadow = events.interrupt.shadow
        if hasattr(state, "nmi_pending"):
            state.nmi_pending = bool(events.nmi.pending or events.nmi.injected)

    def _write_events(self, state: X86State) -> None:
        events = ffi.new("struct kvm_vcpu_events *")
        pending = getattr(state, "pending_interrupt", None)
        if pending is not None:
            events.interrupt.injected = 1
            events.interrupt.nr = pending
        events.interrupt.shadow = getattr(state, "interrupt_shadow", 0)
        events.nmi.pending = 1 if getattr(state, "nmi_pending", False) else 0
        events.flags = lib.KVM_VCPUEVENT_VALID_SHADOW | lib.KVM_VCPUEVENT_VALID_NMI_PENDING
        self._set(lib.KVM_SET_VCPU_EVENTS, events, "set pending events")


def _page_up(size: int) -> int:
    return -(-size // PAGE) * PAGE


def _split_at(start: int, end: int, cut: tuple[int, int]) -> list[tuple[int, int]]:
    """[start, end) split so that ``cut`` (when it lies inside) is a piece of its own."""
    lo, hi = cut
    if not (start <= lo and hi <= end):
        return [(start, end)]
    return [(a, b) for a, b in ((start, lo), (lo, hi), (hi, end)) if b > a]


def _ram_around(ram_size: int, holes: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """RAM slots covering [0, ram_size) except the given (base, size) ranges."""
    slots, cursor = [], 0
    for base, size in sorted(holes):
        if base >= ram_size:
            break
        if base > cursor:
            slots.append((cursor, base - cursor, cursor))
        cursor = max(cursor, base + size)
    if cursor < ram_size:
        slots.append((cursor, ram_size - cursor, cursor))
    return slots


def _segment_from_kvm(seg) -> Segment:
    attrs = (seg.type & ATTR_TYPE_MASK) | (ATTR_S if seg.s else 0) | ((seg.dpl & 3) << ATTR_DPL_SHIFT)
    attrs |= (ATTR_P if seg.present else 0) | (ATTR_AVL if seg.avl else 0) | (ATTR_L if seg.l else 0)
    attrs |= (ATTR_DB if seg.db else 0) | (ATTR_G if seg.g else 0)
    return Segment(seg.selector, seg.base, seg.limit, attrs)


def _segment_to_kvm(segment: Segment, seg) -> None:
    attrs = segment.attrs
    seg.selector, seg.base, seg.limit = segment.selector, segment.base, segment.limit
    seg.type = attrs & ATTR_TYPE_MASK
    seg.s = 1 if attrs & ATTR_S else 0
    seg.dpl = (attrs >> ATTR_DPL_SHIFT) & 3
    seg.present = 1 if attrs & ATTR_P else 0
    seg.avl = 1 if attrs & ATTR_AVL else 0
    seg.l = 1 if attrs & ATTR_L else 0
    seg.db = 1 if attrs & ATTR_DB else 0
    seg.g = 1 if attrs & ATTR_G else 0
    seg.unusable = 0 if seg.present else 1
