"""The local APIC of one x86 CPU, xAPIC mode (Intel SDM vol. 3A, ch. 10 "Advanced
Programmable Interrupt Controller"), at its default base 0xFEE00000.

Emulated: ID, version (0x14, six LVT entries, as QEMU's), TPR and PPR, EOI (with the
EOI broadcast to the I/O APIC for level-triggered vectors), LDR/DFR, SVR (software
enable, spurious vector), ISR/TMR/IRR, ESR (errors latched by a write, as the SDM says),
ICR (fixed, lowest-priority and NMI IPIs to this CPU by shorthand or destination;
INIT and SIPI go to CPUs that do not exist and complete at once), the LVT (timer,
thermal, performance, LINT0, LINT1, error) and the timer: one-shot and periodic, the
divide configuration register, counting in virtual time (DESIGN.md principle 3) at the
1 GHz bus clock QEMU's APIC uses, so a count of N with divide-by-2 lasts (N + 1) * 2 ns
as in QEMU (hw/intc/apic.c, `apic_next_timer`).

LINT0 is the 8259A's INTR. As in QEMU (`apic_accept_pic_intr`), the PIC reaches the CPU
while LINT0 is unmasked or the APIC is globally disabled; an ExtINT acknowledge is
answered by the PIC. Every LVT entry is masked at reset, as in QEMU: the BIOS (post.S,
apic_virtual_wire) sets up the virtual wire, and `virtual_wire` does it for guests that
start without the BIOS.

Not emulated: x2APIC (CPUID does not offer it), the TSC-deadline timer mode (CPUID does
not offer it either), SMI, and on the Unicorn backend NMIs (LINT1, NMI IPIs: there is no
NMI source on this PC; they are counted in ``nmis_dropped``) and CR8 (Unicorn keeps CR8
apart from the TPR; 64-bit Linux does not use it). The APIC base MSR (0x1B) reads the
default base, enabled, BSP through ``msr_read``; Unicorn does not hand RDMSR/WRMSR to
vmm, so there the guest reads 0 (KVM's in-kernel APIC answers it itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vmm.clock import VirtualClock
from vmm.devices.base import Device

APIC_BASE = 0xFEE00000
APIC_WINDOW = 0x1000
APIC_VERSION = 0x00050014  # version 14h, max LVT entry 5 (QEMU's)
MSR_APICBASE_BSP = 1 << 8
MSR_APICBASE_ENABLE = 1 << 11

# LVT indices (registers 0x32-0x37)
LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR = range(6)
LVT_MASKED = 1 << 16
LVT_LEVEL = 1 << 15
LVT_REMOTE_IRR = 1 << 14
LVT_DELIVERY_STATUS = 1 << 12
TIMER_PERIODIC = 1 << 17
# Writable bits of each LVT entry (SDM fig. 10-8): vector, delivery mode, polarity,
# trigger, mask; the timer has its mode bit instead of a delivery mode.
LVT_WRITABLE = (0x300FF, 0x107FF, 0x107FF, 0x1A7FF, 0x1A7FF, 0x100FF)

# Delivery modes (ICR, LVT, I/O APIC redirection entries)
DM_FIXED, DM_LOWEST, DM_SMI, DM_NMI, DM_INIT, DM_SIPI, DM_EXTINT = 0, 1, 2, 4, 5, 6, 7
SVR_ENABLE = 1 << 8
ICR_LEVEL_ASSERT = 1 << 14
ICR_DEST_LOGICAL = 1 << 11

# ESR bits (SDM 10.5.3)
ESR_SEND_ILLEGAL_VECTOR = 1 << 5
ESR_RECEIVE_ILLEGAL_VECTOR = 1 << 6
ESR_ILLEGAL_REGISTER = 1 << 7

TIMER_BUS_NS = 1  # the timer's bus clock: 1 GHz, as QEMU's APIC

# Register numbers (offset >> 4)
REG_ID, REG_VERSION, REG_TPR, REG_APR, REG_PPR, REG_EOI = 0x02, 0x03, 0x08, 0x09, 0x0A, 0x0B
REG_RRD, REG_LDR, REG_DFR, REG_SVR = 0x0C, 0x0D, 0x0E, 0x0F
REG_ISR, REG_TMR, REG_IRR = 0x10, 0x18, 0x20
REG_ESR, REG_ICR_LOW, REG_ICR_HIGH = 0x28, 0x30, 0x31
REG_LVT = 0x32
REG_INITIAL_COUNT, REG_CURRENT_COUNT, REG_DIVIDE = 0x38, 0x39, 0x3E


def _highest(bits: int) -> int:
    return bits.bit_length() - 1  # -1 when empty


class LocalApic(Device):
    """One CPU's local APIC. ``on_output`` is the CPU's interrupt input; ``acknowledge``
    answers the CPU's INTA (from the APIC's IRR, or from the 8259A for ExtINT)."""

    name = "lapic"
    ports: tuple = ()  # registers are memory-mapped only

    def __init__(self, clock: VirtualClock, pic: Any, apic_id: int = 0) -> None:
        self.clock = clock
        self.pic = pic  # the 8259A pair on LINT0: .output, .acknowledge()
        self.initial_id = apic_id
        self.on_output: Callable[[bool], None] | None = None
        # Called with the vector on an EOI of a level-triggered interrupt (the I/O APIC).
        self.eoi_broadcast: Callable[[int], None] | None = None
        self.nmis_dropped = 0
        self._timer = clock.timer(self._timer_fired, "lapic timer")
        self._output = False
        self.apicbase = APIC_BASE | MSR_APICBASE_BSP | MSR_APICBASE_ENABLE
        self.reset()

    # ---- state ----

    def reset(self) -> None:
        self.apicbase = APIC_BASE | (self.apicbase & MSR_APICBASE_BSP) | MSR_APICBASE_ENABLE
        self.id = self.initial_id
        self.tpr = 0
        self.ldr = 0
        self.dfr = 0xFFFFFFFF
        self.svr = 0xFF
        self.isr = self.tmr = self.irr = 0
        self.esr = 0  # the readable ESR
        self.esr_pending = 0  # errors since the last write to the ESR
        self.icr = 0
        # Every LVT entry masked (SDM 10.4.7.1), LINT0 too, as QEMU's: firmware sets up
        # the virtual wire (virtual_wire) before the 8259A reaches the CPU.
        self.lvt = [LVT_MASKED] * 6
        self.divide = 0
        self.count_shift = 1
        self.initial_count = 0
        self.load_time = 0
        self.next_time = 0
        self._timer.cancel()
        self._update()

    def save(self) -> dict[str, Any]:
        return {
            "apicbase": self.apicbase, "id": self.id, "tpr": self.tpr, "ldr": self.ldr, "dfr": self.dfr,
            "svr": self.svr, "isr": self.isr, "tmr": self.tmr, "irr": self.irr, "esr": self.esr,
            "esr_pending": self.esr_pending, "icr": self.icr, "lvt": list(self.lvt), "divide": self.divide,
            "initial_count": self.initial_count, "load_time": self.load_time, "next_time": self.next_time,
            "timer_deadline": self._timer.deadline_ns, "output": self._output, "nmis_dropped": self.nmis_dropped,
        }  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        for key in ("apicbase", "id", "tpr", "ldr", "dfr", "svr", "isr", "tmr", "irr", "esr", "esr_pending",
                    "icr", "initial_count", "load_time", "next_time", "nmis_dropped"):  # fmt: skip
            setattr(self, key, int(state[key]))
        self.lvt = [int(v) for v in state["lvt"]]
        self._set_divide(int(state["divide"]))
        self._timer.cancel()
        if state["timer_deadline"] is not None:
            self._timer.arm(int(state["timer_deadline"]))
        self._output = bool(state["output"])

    def virtual_wire(self) -> None:
        """What a PC BIOS leaves behind (MP spec 3.6.2.2, "virtual wire mode"): the APIC
        software-enabled with spurious vector FFh, LINT0 ExtINT (the 8259A), LINT1 NMI.
        For guests started without the BIOS (--kernel)."""
        self.svr = SVR_ENABLE | 0xFF
        self.lvt[LVT_LINT0] = DM_EXTINT << 8
        self.lvt[LVT_LINT1] = DM_NMI << 8
        self._update()

    # ---- what the CPU sees ----

    @property
    def output(self) -> bool:
        """The CPU's INTR: a deliverable vector, or the 8259A's request through LINT0."""
        return self._output

    @property
    def software_enabled(self) -> bool:
        return bool(self.svr & SVR_ENABLE)

    def _ppr(self) -> int:
        isrv = _highest(self.isr)
        if isrv >= 0 and (isrv & 0xF0) > (self.tpr & 0xF0):
            return isrv & 0xF0
        return self.tpr & 0xFF

    def _deliverable(self) -> int:
        """The vector the CPU would take from the IRR: >0, 0 (none), -1 (held by the PPR)."""
        if not self.software_enabled:
            return 0
        irrv = _highest(self.irr)
        if irrv < 0:
            return 0
        ppr = self._ppr()
        if ppr and (irrv & 0xF0) <= (ppr & 0xF0):
            return -1
        return irrv

    def accepts_pic(self) -> bool:
        """QEMU's apic_accept_pic_intr: the APIC is off, or LINT0 is unmasked."""
        return not self.apicbase & MSR_APICBASE_ENABLE or not self.lvt[LVT_LINT0] & LVT_MASKED

    def _extint_pending(self) -> bool:
        if not self.pic.output or not self.accepts_pic():
            return False
        return not self.apicbase & MSR_APICBASE_ENABLE or (self.lvt[LVT_LINT0] >> 8) & 7 == DM_EXTINT

    def _update(self) -> None:
        output = self._deliverable() > 0 or self._extint_pending()
        if output != self._output:
            self._output = output
            if self.on_output is not None:
                self.on_output(output)

    def acknowledge(self) -> int:
        """INTA: the vector to deliver, or -1 when nothing is to be taken after all."""
        if self._extint_pending():
            return self.pic.acknowledge()  # ExtINT ignores the priorities (QEMU takes it first)
        vector = self._deliverable()
        if vector == 0:
            self._update()
            return -1
        if vector < 0:
            self._update()
            return self.svr & 0xFF  # held back by the PPR after INTR rose: the spurious vector
        bit = 1 << vector
        self.irr &= ~bit
        self.isr |= bit
        self._update()
        return vector

    def pic_output_changed(self, level: bool) -> None:
        """The 8259A's INTR, wired to LINT0."""
        if self.accepts_pic():
            lvt = self.lvt[LVT_LINT0]
            mode = (lvt >> 8) & 7
            if level:
                self._local_deliver(LVT_LINT0)
            elif mode == DM_FIXED and lvt & LVT_LEVEL:
                self.irr &= ~(1 << (lvt & 0xFF))
        self._update()

    # ---- interrupt sources ----

    def set_irq(self, vector: int, level_triggered: bool) -> None:
        """Accept a fixed interrupt (an I/O APIC message, an IPI, an LVT entry)."""
        if vector < 16:
            self._error(ESR_RECEIVE_ILLEGAL_VECTOR)
            return
        bit = 1 << vector
        self.irr |= bit
        if level_triggered:
            self.tmr |= bit
        else:
            self.tmr &= ~bit
        self._update()

    def nmi(self) -> None:
        self.nmis_dropped += 1

    def deliver(self, mode: int, vector: int, level_triggered: bool) -> None:
        """A message from the I/O APIC (or an IPI) for this CPU."""
        if mode in (DM_FIXED, DM_LOWEST):
            self.set_irq(vector, level_triggered)
        elif mode == DM_NMI:
            self.nmi()
        elif mode == DM_EXTINT:
            self._update()  # the PIC answers the acknowledge
        # SMI, INIT and SIPI: nothing for the one running CPU to do.

    def matches(self, dest: int, logical: bool) -> bool:
        """Whether a message for ``dest`` (physical or logical mode) reaches this APIC."""
        if not logical:
            return dest == 0xFF or dest == self.id
        if dest == 0xFF:
            return True
        ldr = self.ldr >> 24
        if (self.dfr >> 28) == 0xF:  # flat model
            return bool(dest & ldr)
        return (dest >> 4) == (ldr >> 4) and bool(dest & ldr & 0xF)  # cluster model

    def _local_deliver(self, index: int) -> None:
        lvt = self.lvt[index]
        if lvt & LVT_MASKED:
            return
        mode = DM_FIXED if index in (LVT_TIMER, LVT_ERROR) else (lvt >> 8) & 7
        if mode == DM_NMI:
            self.nmi()
        elif mode == DM_EXTINT:
            self._update()
        elif mode == DM_FIXED:
            level = index in (LVT_LINT0, LVT_LINT1) and bool(lvt & LVT_LEVEL)
            self.set_irq(lvt & 0xFF, level)

    def _error(self, bit: int) -> None:
        first = not self.esr_pending & bit
        self.esr_pending |= bit
        if first:
            self._local_deliver(LVT_ERROR)

    # ---- the timer ----

    def _set_divide(self, value: int) -> None:
        self.divide = value & 0xB
        v = (value & 3) | ((value >> 1) & 4)
        self.count_shift = (v + 1) & 7

    def _ticks_since_load(self, now: int) -> int:
        return ((now - self.load_time) // TIMER_BUS_NS) >> self.count_shift

    def current_count(self) -> int:
        if not self.initial_count:
            return 0
        ticks = self._ticks_since_load(self.clock.now_ns())
        if self.lvt[LVT_TIMER] & TIMER_PERIODIC:
            return self.initial_count - ticks % (self.initial_count + 1)
        return max(0, self.initial_count - ticks)

    def _timer_update(self, now: int) -> None:
        """Arm the timer at its next expiry after ``now`` (QEMU's apic_next_timer)."""
        self._timer.cancel()
        if self.lvt[LVT_TIMER] & LVT_MASKED or not self.initial_count:
            return
        ticks = self._ticks_since_load(now)
        period = self.initial_count + 1
        if self.lvt[LVT_TIMER] & TIMER_PERIODIC:
            ticks = (ticks // period + 1) * period
        elif ticks >= self.initial_count:
            return
        else:
            ticks = period
        self.next_time = self.load_time + (ticks << self.count_shift) * TIMER_BUS_NS
        self._timer.arm(self.next_time)

    def _timer_fired(self) -> None:
        self._local_deliver(LVT_TIMER)
        self._timer_update(self.next_time)

    # ---- registers ----

    def mmio_read(self, offset: int, size: int) -> int:
        reg, byte = offset >> 4, offset & 0xF
        value = self._read_register(reg)
        return (value >> (8 * (byte & 3))) if byte < 4 else 0

    def _read_register(self, reg: int) -> int:
        if reg == REG_ID:
            return self.id << 24
        if reg == REG_VERSION:
            return APIC_VERSION
        if reg == REG_TPR:
            return self.tpr
        if reg in (REG_APR, REG_EOI, REG_RRD):
            return 0
        if reg == REG_PPR:
            return self._ppr()
        if reg == REG_LDR:
            return self.ldr
        if reg == REG_DFR:
            return self.dfr
        if reg == REG_SVR:
            return self.svr
        if REG_ISR <= reg < REG_ISR + 8:
            return (self.isr >> (32 * (reg - REG_ISR))) & 0xFFFFFFFF
        if REG_TMR <= reg < REG_TMR + 8:
            return (self.tmr >> (32 * (reg - REG_TMR))) & 0xFFFFFFFF
        if REG_IRR <= reg < REG_IRR + 8:
            return (self.irr >> (32 * (reg - REG_IRR))) & 0xFFFFFFFF
        if reg == REG_ESR:
            return self.esr
        if reg == REG_ICR_LOW:
            return self.icr & 0xFFFFFFFF
        if reg == REG_ICR_HIGH:
            return self.icr >> 32
        if REG_LVT <= reg < REG_LVT + 6:
            return self.lvt[reg - REG_LVT]
        if reg == REG_INITIAL_COUNT:
            return self.initial_count
        if reg == REG_CURRENT_COUNT:
            return self.current_count()
        if reg == REG_DIVIDE:
            return self.divide
        self._error(ESR_ILLEGAL_REGISTER)
        return 0

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        reg, byte = offset >> 4, offset & 0xF
        if byte >= 4:
            return  # the upper 12 bytes of each 16-byte slot are reserved
        value = (value << (8 * byte)) & 0xFFFFFFFF
        if reg == REG_ID:
            self.id = value >> 24
        elif reg == REG_TPR:
            self.tpr = value & 0xFF
            self._update()
        elif reg == REG_EOI:
            self._eoi()
        elif reg == REG_LDR:
            self.ldr = value & 0xFF000000
        elif reg == REG_DFR:
            self.dfr = value | 0x0FFFFFFF
        elif reg == REG_SVR:
            self.svr = value & 0x3FF
            self._update()
        elif reg == REG_ESR:
            self.esr, self.esr_pending = self.esr_pending, 0
        elif reg == REG_ICR_LOW:
            self.icr = (self.icr & ~0xFFFFFFFF) | (value & ~LVT_DELIVERY_STATUS)
            self._send_ipi()
        elif reg == REG_ICR_HIGH:
            self.icr = (self.icr & 0xFFFFFFFF) | (value & 0xFF000000) << 32
        elif REG_LVT <= reg < REG_LVT + 6:
            self._write_lvt(reg - REG_LVT, value)
        elif reg == REG_INITIAL_COUNT:
            self.initial_count = value
            self.load_time = self.clock.now_ns()
            self._timer_update(self.load_time)
        elif reg == REG_DIVIDE:
            self._set_divide(value)
        elif reg not in (REG_VERSION, REG_APR, REG_PPR, REG_RRD, REG_CURRENT_COUNT) and not (
            REG_ISR <= reg < REG_IRR + 8
        ):
            self._error(ESR_ILLEGAL_REGISTER)

    def _write_lvt(self, index: int, value: int) -> None:
        old = self.lvt[index]
        self.lvt[index] = (value & LVT_WRITABLE[index]) | (old & LVT_REMOTE_IRR)
        if index == LVT_TIMER:
            self._timer_update(self.clock.now_ns())
        elif index == LVT_LINT0 and self.pic.output and self.accepts_pic():
            self._local_deliver(LVT_LINT0)
        self._update()

    def _eoi(self) -> None:
        isrv = _highest(self.isr)
        if isrv < 0:
            return
        self.isr &= ~(1 << isrv)
        if self.tmr >> isrv & 1 and self.eoi_broadcast is not None:
            self.eoi_broadcast(isrv)
        self._update()

    def _send_ipi(self) -> None:
        icr = self.icr
        vector, mode = icr & 0xFF, (icr >> 8) & 7
        shorthand = (icr >> 18) & 3
        if shorthand == 0:
            to_self = self.matches(icr >> 56, bool(icr & ICR_DEST_LOGICAL))
        else:
            to_self = shorthand in (1, 2)
        if mode in (DM_FIXED, DM_LOWEST) and vector < 16:
            self._error(ESR_SEND_ILLEGAL_VECTOR)
            return
        if not to_self:
            return  # INIT, SIPI and IPIs for CPUs this machine does not have
        if mode in (DM_FIXED, DM_LOWEST):
            self.set_irq(vector, False)
        elif mode == DM_NMI:
            self.nmi()

    # ---- the APIC base MSR ----

    def msr_read(self) -> int:
        return self.apicbase

    def msr_write(self, value: int) -> None:
        # Only the enable bit is honoured: the APIC stays at its default base.
        self.apicbase = (self.apicbase & ~MSR_APICBASE_ENABLE) | (value & MSR_APICBASE_ENABLE)
        self._update()
