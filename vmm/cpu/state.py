"""The whole architectural x86 state as one dataclass, shared by every CPU backend.

State moves between backends through this type (start on Unicorn, continue on KVM), and
snapshots store it. Segment registers carry their hidden descriptor caches, with the
attributes in the layout of a descriptor's bits 40-55 (type, S, DPL, P, AVL, L, D/B, G),
the form both VMX and QEMU keep.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

GPR_NAMES = (
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
)  # fmt: skip
SEGMENT_NAMES = ("es", "cs", "ss", "ds", "fs", "gs")

# Attribute bits (descriptor bits 40-55 shifted down by 40).
ATTR_TYPE_MASK = 0x000F
ATTR_S = 0x0010
ATTR_DPL_SHIFT = 5
ATTR_P = 0x0080
ATTR_AVL = 0x1000
ATTR_L = 0x2000
ATTR_DB = 0x4000
ATTR_G = 0x8000

CR0_PE = 1 << 0
CR0_ET = 1 << 4
CR0_NE = 1 << 5
CR0_WP = 1 << 16
CR0_NW = 1 << 29
CR0_CD = 1 << 30
CR0_PG = 1 << 31
CR4_PAE = 1 << 5
EFER_SCE = 1 << 0
EFER_LME = 1 << 8
EFER_LMA = 1 << 10
EFER_NXE = 1 << 11
RFLAGS_IF = 1 << 9
RFLAGS_VM = 1 << 17

# MSRs kept in X86State.msrs (architectural numbers, Intel SDM vol. 4).
MSR_IA32_TSC = 0x10
MSR_IA32_APICBASE = 0x1B
MSR_IA32_SYSENTER_CS = 0x174
MSR_IA32_SYSENTER_ESP = 0x175
MSR_IA32_SYSENTER_EIP = 0x176
MSR_IA32_PAT = 0x277
MSR_EFER = 0xC0000080
MSR_STAR = 0xC0000081
MSR_LSTAR = 0xC0000082
MSR_CSTAR = 0xC0000083
MSR_FMASK = 0xC0000084
MSR_FS_BASE = 0xC0000100
MSR_GS_BASE = 0xC0000101
MSR_KERNEL_GS_BASE = 0xC0000102
MSR_TSC_AUX = 0xC0000103  # what RDTSCP (ECX) and RDPID read
SAVED_MSRS = (
    MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP, MSR_IA32_PAT,
    MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_FMASK, MSR_KERNEL_GS_BASE, MSR_TSC_AUX,
)  # fmt: skip


@dataclass
class Segment:
    selector: int = 0
    base: int = 0
    limit: int = 0xFFFF
    attrs: int = 0x0093  # present, read/write data, accessed (real-mode default)

    @property
    def dpl(self) -> int:
        return (self.attrs >> ATTR_DPL_SHIFT) & 3

    @property
    def present(self) -> bool:
        return bool(self.attrs & ATTR_P)


@dataclass
class Table:
    base: int = 0
    limit: int = 0xFFFF


def _real_mode_segments() -> dict[str, Segment]:
    segments = {name: Segment() for name in SEGMENT_NAMES}
    # Architectural reset (SDM vol. 3, 9.1.4): CS = F000 with base FFFF0000, so the first
    # fetch is at FFFFFFF0, in the ROM at the top of 4 GiB; the first far jump reloads CS
    # with base F0000, where the same ROM is also mapped.
    segments["cs"] = Segment(0xF000, 0xFFFF0000, 0xFFFF, 0x009B)
    return segments


@dataclass
class X86State:
    gprs: dict[str, int] = field(default_factory=lambda: {name: 0 for name in GPR_NAMES})
    rip: int = 0xFFF0
    rflags: int = 0x2
    segments: dict[str, Segment] = field(default_factory=_real_mode_segments)
    ldt: Segment = field(default_factory=lambda: Segment(0, 0, 0xFFFF, 0x0082))
    tr: Segment = field(default_factory=lambda: Segment(0, 0, 0xFFFF, 0x008B))
    gdt: Table = field(default_factory=Table)
    idt: Table = field(default_factory=Table)
    cr0: int = 0x60000010
    cr2: int = 0
    cr3: int = 0
    cr4: int = 0
    cr8: int = 0
    efer: int = 0
    msrs: dict[int, int] = field(default_factory=dict)
    # FXSAVE image (512 bytes): x87, MMX, SSE and MXCSR. Empty means "reset state".
    fxsave: bytes = b""
    dr: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0xFFFF0FF0, 0x400])
    halted: bool = False
    a20_enabled: bool = True
    # Events between instructions: an interrupt acknowledged at the PIC but not yet taken
    # by the CPU, the STI/MOV SS shadow, a pending NMI (KVM reports them; Unicorn has none
    # between runs).
    pending_interrupt: int | None = None
    interrupt_shadow: int = 0
    nmi_pending: bool = False

    @property
    def cpl(self) -> int:
        return self.segments["ss"].dpl if self.cr0 & CR0_PE else 0

    @property
    def mode(self) -> str:
        """'real', 'protected', 'long' (64-bit code) or 'compat' (32-bit code in long mode)."""
        if not self.cr0 & CR0_PE:
            return "real"
        if self.rflags & RFLAGS_VM:
            return "vm86"
        if self.efer & EFER_LMA:
            return "long" if self.segments["cs"].attrs & ATTR_L else "compat"
        return "protected"

    @property
    def code_bits(self) -> int:
        mode = self.mode
        if mode == "long":
            return 64
        if mode in ("real", "vm86"):
            return 16
        return 32 if self.segments["cs"].attrs & ATTR_DB else 16

    @property
    def pc(self) -> int:
        """The linear address of the next instruction."""
        return (self.segments["cs"].base + self.rip) & 0xFFFFFFFFFFFFFFFF

    def to_dict(self) -> dict:
        data = asdict(self)
        data["fxsave"] = self.fxsave.hex()
        data["msrs"] = {str(k): v for k, v in self.msrs.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> X86State:
        state = cls()
        state.gprs = dict(data["gprs"])
        state.rip = data["rip"]
        state.rflags = data["rflags"]
        state.segments = {k: Segment(**v) for k, v in data["segments"].items()}
        state.ldt = Segment(**data["ldt"])
        state.tr = Segment(**data["tr"])
        state.gdt = Table(**data["gdt"])
        state.idt = Table(**data["idt"])
        for name in ("cr0", "cr2", "cr3", "cr4", "cr8", "efer", "halted", "a20_enabled"):
            setattr(state, name, data[name])
        state.pending_interrupt = data.get("pending_interrupt")
        state.interrupt_shadow = data.get("interrupt_shadow", 0)
        state.nmi_pending = data.get("nmi_pending", False)
        state.msrs = {int(k): v for k, v in data["msrs"].items()}
        state.fxsave = bytes.fromhex(data["fxsave"])
        state.dr = list(data["dr"])
        return state
