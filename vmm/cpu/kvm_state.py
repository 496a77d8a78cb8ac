"""KVM, the state half: the whole x86 state of the vCPU as one X86State, read and
written through KVM_GET/SET_REGS, SREGS, XSAVE (or FPU), MSRS, DEBUGREGS, VCPU_EVENTS
and MP_STATE, in Firecracker's restore order.

:class:`KvmState` is one of the parts vmm.cpu.kvm.KvmCpu is made of.
"""

from __future__ import annotations

from vmm.cpu.kvm_probe import bindings
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
    MSR_IA32_TSC,
    SAVED_MSRS,
    SEGMENT_NAMES,
    Segment,
    Table,
    X86State,
)
from vmm.errors import CpuError

ffi, lib = bindings()

KVM_MSRS = (*SAVED_MSRS, MSR_IA32_TSC)  # the TSC too, so that a restore keeps guest time
XSTATE_BV_OFFSET = 512  # XSAVE header: which components the image holds (SDM vol. 1, 13.4.2)
XSTATE_X87_SSE = 0x3
FXSAVE_RESET = (0x037F).to_bytes(2, "little") + bytes(22) + (0x1F80).to_bytes(4, "little") + bytes(484)


class KvmState:
    """X86State in and out of the vCPU (mixed into KvmCpu, which owns the attributes)."""

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
