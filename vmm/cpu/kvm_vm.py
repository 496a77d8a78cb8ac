"""KVM, the VM half: the VM file descriptor, its memory slots, the in-kernel irqchip
and the vCPU's CPUID (Documentation/virt/kvm/api.rst: CREATE_VM, SET_TSS_ADDR,
SET_IDENTITY_MAP_ADDR, SET_USER_MEMORY_REGION, CREATE_VCPU, SET_CPUID2).

:class:`KvmVm` is one of the parts vmm.cpu.kvm.KvmCpu is made of; the others are the
vCPU run loop (vmm.cpu.kvm) and the state marshalling (vmm.cpu.kvm_state).
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
from dataclasses import dataclass

from vmm.cpu.base import A20_WINDOW, A20_WINDOW_SIZE
from vmm.cpu.kvm_probe import bindings
from vmm.errors import BackendUnavailable, CpuError
from vmm.memory import GuestMemory

ffi, lib = bindings()

PAGE = 4096
TSS_ADDR = 0xFFFBD000  # three pages KVM needs for real-mode emulation on VMX
IDENTITY_MAP_ADDR = 0xFFFBC000  # one page: the identity page table for unpaged guests on EPT

# CPUID bits (SDM vol. 2A, CPUID) that describe hardware this machine does not have.
CPUID1_ECX_X2APIC = 1 << 21
CPUID1_ECX_TSC_DEADLINE = 1 << 24
CPUID1_EDX_APIC = 1 << 9
MSR_IA32_APICBASE = 0x1B
KVM_SET_GSI_ROUTING = 0x4008AE6A  # _IOW(KVMIO, 0x6a, struct kvm_irq_routing)
KVM_IRQ_ROUTING_IRQCHIP = 1
APIC_DEFAULT_BASE = 0xFEE00000
APICBASE_BSP = 1 << 8
APICBASE_ENABLE = 1 << 11
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


@dataclass(frozen=True)
class Slot:
    base: int
    size: int
    host_addr: int
    read_only: bool


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


class KvmVm:
    """VM set-up and guest memory (mixed into KvmCpu, which owns the attributes)."""

    memory: GuestMemory
    irqchip: str

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
            self._slots.append(Slot(base, size, host, read_only))
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

    local_apic = False  # CPUID's APIC bit (show_local_apic)

    def show_local_apic(self, present: bool) -> None:
        """CPUID's APIC bit: set on machines with a local APIC (`pc`). Called before the
        vCPU first runs (KVM refuses CPUID changes after that). KVM also derives the bit
        from the APIC base MSR's enable bit, so without an in-kernel APIC the MSR says
        enabled (vmm's local APIC answers its MMIO) or disabled (isapc)."""
        if bool(present) != self.local_apic:
            self.local_apic = bool(present)
            self._set_cpuid()
        if self.irqchip != "kernel":
            apicbase = APIC_DEFAULT_BASE | APICBASE_BSP | APICBASE_ENABLE if present else 0
            msrs = ffi.new("struct kvm_msrs *", {"nmsrs": 1, "entries": 1})
            msrs.entries[0].index, msrs.entries[0].data = MSR_IA32_APICBASE, apicbase
            if lib.vmm_ioctl_ptr(self._vcpu, lib.KVM_SET_MSRS, msrs) != 1:
                raise CpuError("KVM cannot set the APIC base MSR")

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
                # A local APIC only on `pc` (show_local_apic); isapc's interrupts come from
                # the 8259A pair. Never x2APIC or the TSC-deadline timer.
                entry.ecx &= ~(CPUID1_ECX_X2APIC | CPUID1_ECX_TSC_DEADLINE | CPUID1_ECX_RDRAND) & 0xFFFFFFFF
                if not self.local_apic:
                    entry.edx &= ~CPUID1_EDX_APIC & 0xFFFFFFFF
                entry.ebx &= 0x0000FFFF  # initial APIC id 0
                entry.ebx |= 1 << 16  # one logical processor
            elif entry.function == 7 and entry.index == 0:
                entry.ebx &= ~CPUID7_EBX_RDSEED & 0xFFFFFFFF
            elif 0x80000002 <= entry.function <= 0x80000004:
                part = CPU_BRAND[16 * (entry.function - 0x80000002) :][:16]
                entry.eax, entry.ebx, entry.ecx, entry.edx = (
                    int.from_bytes(part[i : i + 4], "little") for i in range(0, 16, 4)
                )
            elif entry.function == KVM_CPUID_FEATURES:
                entry.eax &= KVM_PV_FEATURES_KEPT
        self._check(lib.vmm_ioctl_ptr(self._vcpu, lib.KVM_SET_CPUID2, cpuid), "set the guest CPUID")

    def _create_kernel_irqchip(self) -> None:
        """KVM's PIC pair, IOAPIC and (per vCPU) LAPIC, and its 8254: before the vCPU exists."""
        for cap, what in ((lib.KVM_CAP_IRQCHIP, "an in-kernel irqchip"), (lib.KVM_CAP_PIT2, "an in-kernel PIT")):
            if not self._has(cap):
                raise BackendUnavailable(f"this KVM has no {what}: use --irqchip user")
        self._check(lib.vmm_ioctl_int(self._vm, lib.KVM_CREATE_IRQCHIP, 0), "create the in-kernel irqchip")
        self._route_isa_irqs()
        config = ffi.new("struct kvm_pit_config *")
        self._check(lib.vmm_ioctl_ptr(self._vm, lib.KVM_CREATE_PIT2, config), "create the in-kernel PIT")

    def _route_isa_irqs(self) -> None:
        """QEMU's GSI routing (kvm_pc_setup_irq_routing): GSI 0-15 to the PIC pair's pins
        (2 is the cascade), GSI 0-23 to the I/O APIC's inputs with GSI 0 (the PIT) on input
        2, as vmm's I/O APIC and the BIOS's MP table have it. KVM's default puts GSI 0 on
        input 0. Built as raw bytes: struct kvm_irq_routing (nr, flags) and 48-byte
        struct kvm_irq_routing_entry (gsi, type, flags, pad, u.irqchip = irqchip, pin)."""
        routes = [(gsi, 0 if gsi < 8 else 1, gsi % 8) for gsi in range(16) if gsi != 2]
        routes += [(gsi, 2, 2 if gsi == 0 else gsi) for gsi in range(24) if gsi != 2]
        table = struct.pack("<II", len(routes), 0) + b"".join(
            struct.pack("<IIII", gsi, KVM_IRQ_ROUTING_IRQCHIP, 0, 0) + struct.pack("<II", chip, pin) + bytes(24)
            for gsi, chip, pin in routes
        )
        buffer = ffi.new("char[]", table)
        self._check(lib.vmm_ioctl_ptr(self._vm, KVM_SET_GSI_ROUTING, buffer), "route the ISA IRQs (GSI routing)")

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
