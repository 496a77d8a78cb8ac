"""The Unicorn backend's state half: the whole x86 state as one X86State, read from and
written to QEMU's CPUX86State through Unicorn's registers and the native glue (segment
caches with their hidden parts, EFER, hflags), and the x87/SSE state in FXSAVE layout.

:class:`UnicornState` is mixed into vmm.cpu.unicorn.UnicornCpu, which owns the engine.
"""

from __future__ import annotations

from vmm.cpu.state import (
    GPR_NAMES,
    SAVED_MSRS,
    SEGMENT_NAMES,
    Segment,
    Table,
    X86State,
)
from vmm.errors import CpuError

try:
    from vmm._uc_glue import ffi, lib
except ImportError as exc:  # pragma: no cover - a broken install
    raise CpuError(f"vmm's native Unicorn glue is not built ({exc}); run `make` (or `pip install -e .`)") from exc

# Register ids from unicorn's x86.h, as the glue was compiled with them (build_uc_glue.py).
_GPR_IDS = [getattr(lib, f"UC_X86_REG_{name.upper()}") for name in GPR_NAMES]
_CR_IDS = {0: lib.UC_X86_REG_CR0, 2: lib.UC_X86_REG_CR2, 3: lib.UC_X86_REG_CR3, 4: lib.UC_X86_REG_CR4,
           8: lib.UC_X86_REG_CR8}  # fmt: skip
_DR_IDS = [lib.UC_X86_REG_DR0, lib.UC_X86_REG_DR1, lib.UC_X86_REG_DR2, lib.UC_X86_REG_DR3,
           lib.UC_X86_REG_DR6, lib.UC_X86_REG_DR7]  # fmt: skip
# The x87 and XMM registers are read by number from the first one.
if lib.UC_X86_REG_FP7 != lib.UC_X86_REG_FP0 + 7 or lib.UC_X86_REG_XMM15 != lib.UC_X86_REG_XMM0 + 15:
    raise CpuError("unicorn's x87/XMM register ids are not consecutive (x86.h changed?): vmm cannot save its state")
# Segment cache slots in QEMU's CPUX86State, in glue index order.
SEG_INDEX = {name: i for i, name in enumerate(SEGMENT_NAMES)} | {"ldt": 6, "tr": 7, "gdt": 8, "idt": 9}


def _attrs_from_flags(flags: int) -> int:
    return (flags >> 8) & 0xF0FF


def _flags_from_attrs(attrs: int) -> int:
    return (attrs & 0xF0FF) << 8


class UnicornState:
    """X86State in and out of the engine (mixed into UnicornCpu)."""

    def get_state(self) -> X86State:
        uc, g = self._engine, self._g
        state = X86State()
        state.gprs = {name: uc.reg_read(reg) for name, reg in zip(GPR_NAMES, _GPR_IDS, strict=True)}
        state.rip = lib.vmm_get_env_u64(g, lib.VMM_ENV_EIP)
        state.rflags = uc.reg_read(lib.UC_X86_REG_RFLAGS)
        seg = ffi.new("struct vmm_seg *")
        for name, index in SEG_INDEX.items():
            lib.vmm_get_seg(g, index, seg)
            if name in ("gdt", "idt"):
                setattr(state, name, Table(seg.base, seg.limit))
            else:
                value = Segment(seg.selector, seg.base, seg.limit, _attrs_from_flags(seg.flags))
                if name in ("ldt", "tr"):
                    setattr(state, name, value)
                else:
                    state.segments[name] = value
        state.cr0 = uc.reg_read(_CR_IDS[0])
        state.cr2 = uc.reg_read(_CR_IDS[2])
        state.cr3 = uc.reg_read(_CR_IDS[3])
        state.cr4 = uc.reg_read(_CR_IDS[4])
        state.cr8 = uc.reg_read(_CR_IDS[8])
        state.efer = lib.vmm_get_env_u64(g, lib.VMM_ENV_EFER)
        state.msrs = {msr: uc.msr_read(msr) for msr in SAVED_MSRS}
        state.dr = [uc.reg_read(reg) for reg in _DR_IDS]
        state.fxsave = self._read_fxsave()
        state.a20_enabled = self._a20 if self._a20_pending is None else self._a20_pending
        state.halted = self._halted
        return state

    def set_state(self, state: X86State) -> None:
        uc, g = self._engine, self._g
        # A loaded state is between instructions: no exception is in flight (left at #DF
        # after a triple fault, the next fault escalated, or a fault went unreported).
        lib.vmm_reset_exception_state(g)
        self._halted = state.halted
        g.fault_count = 0
        for name, reg in zip(GPR_NAMES, _GPR_IDS, strict=True):
            uc.reg_write(reg, state.gprs[name])
        # Control registers first: QEMU recomputes its mode flags from them.
        uc.reg_write(_CR_IDS[4], state.cr4)
        uc.reg_write(_CR_IDS[3], state.cr3)
        uc.reg_write(_CR_IDS[0], state.cr0)
        uc.reg_write(_CR_IDS[2], state.cr2)
        lib.vmm_set_env_u64(g, lib.VMM_ENV_EFER, state.efer)
        for msr in SAVED_MSRS:
            uc.msr_write(msr, state.msrs.get(msr, 0x0007040600070406 if msr == 0x277 else 0))
        seg = ffi.new("struct vmm_seg *")
        for name, index in SEG_INDEX.items():
            if name in ("gdt", "idt"):
                table = getattr(state, name)
                seg.selector, seg.base, seg.limit, seg.flags = 0, table.base, table.limit, 0
            else:
                value = getattr(state, name) if name in ("ldt", "tr") else state.segments[name]
                seg.selector, seg.base, seg.limit = value.selector, value.base, value.limit
                seg.flags = _flags_from_attrs(value.attrs)
            lib.vmm_set_seg(g, index, seg)
        uc.reg_write(lib.UC_X86_REG_RFLAGS, state.rflags)
        lib.vmm_set_env_u64(g, lib.VMM_ENV_EIP, state.rip)
        for reg, value in zip(_DR_IDS, state.dr, strict=True):
            uc.reg_write(reg, value)
        if state.fxsave:
            self._write_fxsave(state.fxsave)
        else:
            uc.reg_write(lib.UC_X86_REG_FPCW, 0x037F)
            uc.reg_write(lib.UC_X86_REG_MXCSR, 0x1F80)
        self.set_a20(state.a20_enabled)
        # HF2_GIF: interrupts are globally enabled outside SVM (QEMU's reset sets it).
        lib.vmm_set_env_u64(g, lib.VMM_ENV_HFLAGS2, lib.vmm_get_env_u64(g, lib.VMM_ENV_HFLAGS2) | 1)
        lib.vmm_update_hflags(g)
        uc.flush_tb()

    def _read_fxsave(self) -> bytes:
        """The x87/SSE state packed in the FXSAVE layout (SDM vol. 1, 10.5.1)."""
        uc = self._engine
        image = bytearray(512)
        fcw = uc.reg_read(lib.UC_X86_REG_FPCW)
        fsw = uc.reg_read(lib.UC_X86_REG_FPSW)
        ftw = uc.reg_read(lib.UC_X86_REG_FPTAG)
        # FXSAVE keeps an abridged tag: one bit per register, 1 = valid.
        abridged = 0
        for i in range(8):
            if (ftw >> (2 * i)) & 3 != 3:
                abridged |= 1 << i
        image[0:2] = fcw.to_bytes(2, "little")
        image[2:4] = fsw.to_bytes(2, "little")
        image[4] = abridged
        image[24:28] = uc.reg_read(lib.UC_X86_REG_MXCSR).to_bytes(4, "little")
        image[28:32] = (0xFFFF).to_bytes(4, "little")  # MXCSR_MASK
        for i in range(8):
            mantissa, exponent = uc.float80_read(lib.UC_X86_REG_FP0 + i)
            off = 32 + 16 * i
            image[off : off + 8] = mantissa.to_bytes(8, "little")
            image[off + 8 : off + 10] = exponent.to_bytes(2, "little")
        for i in range(16):
            value = uc.reg_read(lib.UC_X86_REG_XMM0 + i, 16)
            image[160 + 16 * i : 176 + 16 * i] = value.to_bytes(16, "little")
        return bytes(image)

    def _write_fxsave(self, image: bytes) -> None:
        uc = self._engine
        uc.reg_write(lib.UC_X86_REG_FPCW, int.from_bytes(image[0:2], "little"))
        uc.reg_write(lib.UC_X86_REG_FPSW, int.from_bytes(image[2:4], "little"))
        abridged = image[4]
        ftw = 0
        for i in range(8):
            ftw |= (0 if abridged & (1 << i) else 3) << (2 * i)
        uc.reg_write(lib.UC_X86_REG_FPTAG, ftw)
        uc.reg_write(lib.UC_X86_REG_MXCSR, int.from_bytes(image[24:28], "little") or 0x1F80)
        for i in range(8):
            off = 32 + 16 * i
            uc.float80_write(lib.UC_X86_REG_FP0 + i, int.from_bytes(image[off : off + 8], "little"),
                             int.from_bytes(image[off + 8 : off + 10], "little"))  # fmt: skip
        for i in range(16):
            uc.reg_write(lib.UC_X86_REG_XMM0 + i, int.from_bytes(image[160 + 16 * i : 176 + 16 * i], "little"), 16)
