"""The Intel 8259A programmable interrupt controller, as the PC/AT cascades two of them.

Source: Intel, "8259A Programmable Interrupt Controller" datasheet (order 231468-003),
sections "Initialization Command Words" and "Operation Command Words"; the PC/AT wiring
(master at 0x20/0x21, slave at 0xA0/0xA1 cascaded on master IR2) and the ELCR at
0x4D0/0x4D1 from the Intel 82371AB (PIIX4) datasheet, section 4.1.6.

Emulated: ICW1-ICW4 initialization (single/cascade, LTIM level mode, ICW4 AEOI), OCW1
(IMR), OCW2 (non-specific, specific and rotating EOI, rotate in AEOI, set priority),
OCW3 (read IRR/ISR, poll, special mask mode), edge latching of IRQ inputs, per-line
level mode through the ELCR, special fully nested mode on the master, and spurious
IRQ7/IRQ15 when a request disappears before the INTA cycle.
Not emulated: the 8080/8085 call-address mode (ICW1 ADI, ICW2 A15-A8), buffered mode
(ICW4 BUF, M/S): they have no effect on a PC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from vmm.devices.base import Device
from vmm.devices.ioport import read_split, write_split

CASCADE_IR = 2  # the slave's INT is wired to master IR2 on the PC/AT
SPURIOUS_IR = 7
# PIIX4 ELCR: IRQ0, 1, 2, 8 and 13 are always edge-triggered.
ELCR_MASK = (0xF8, 0xDE)


@dataclass
class Pic8259:
    """One 8259A: its registers and its priority resolver."""

    irr: int = 0  # interrupt request register
    isr: int = 0  # in-service register
    imr: int = 0  # interrupt mask register (OCW1)
    input_levels: int = 0  # the IR pins as last driven, for edge detection
    vector_base: int = 0  # ICW2 T7-T3
    icw1: int = 0
    icw3: int = 0
    init_step: int = 0  # 0: operational; 2, 3, 4: the next byte on A0=1 is ICW2/3/4
    auto_eoi: bool = False  # ICW4 AEOI
    special_fully_nested: bool = False  # ICW4 SFNM
    rotate_on_auto_eoi: bool = False  # OCW2 R=1 SL=0 EOI=0 / R=0
    lowest_priority: int = 7  # the IR with the lowest priority (OCW2 set priority / rotation)
    read_isr: bool = False  # OCW3 RR/RIS: which register an A0=0 read returns
    poll: bool = False  # OCW3 P: the next A0=0 read is a poll
    special_mask: bool = False  # OCW3 SMM
    elcr: int = 0  # edge/level control (PIIX4), 1 = level

    @property
    def level_triggered(self) -> int:
        """Bit mask of the inputs in level mode (ICW1 LTIM: all of them)."""
        return 0xFF if self.icw1 & 0x08 else self.elcr

    @property
    def single(self) -> bool:
        return bool(self.icw1 & 0x02)

    def set_input(self, ir: int, level: bool) -> None:
        mask = 1 << ir
        if self.level_triggered & mask:
            # Level mode: IRR follows the pin (datasheet, "Level Triggered Mode").
            self.irr = self.irr | mask if level else self.irr & ~mask
        elif level and not self.input_levels & mask:
            self.irr |= mask  # the edge-sense latch catches a low-to-high transition
        self.input_levels = self.input_levels | mask if level else self.input_levels & ~mask

    def _priority_order(self, mask: int) -> int:
        """How many steps below the highest priority the best IR in ``mask`` sits (8: none)."""
        for step in range(8):
            if mask & (1 << ((self.lowest_priority + 1 + step) & 7)):
                return step
        return 8

    def pending(self, is_master: bool) -> int | None:
        """The IR the priority resolver would present now, or None."""
        requests = self.irr & ~self.imr
        step = self._priority_order(requests)
        if step == 8:
            return None
        in_service = self.isr
        if self.special_mask:
            in_service &= ~self.imr  # SMM: masked levels do not block lower ones
        if self.special_fully_nested and is_master:
            in_service &= ~(1 << CASCADE_IR)  # SFNM: the slave may interrupt its own level
        if step < self._priority_order(in_service):
            return (self.lowest_priority + 1 + step) & 7
        return None

    def acknowledge(self, ir: int) -> None:
        """The INTA cycle for ``ir``: IRR to ISR (or straight through with AEOI)."""
        mask = 1 << ir
        if self.auto_eoi:
            if self.rotate_on_auto_eoi:
                self.lowest_priority = ir
        else:
            self.isr |= mask
        if not self.level_triggered & mask:
            self.irr &= ~mask  # a level input stays requested while its pin is high

    def _end_of_interrupt(self, ir: int, rotate: bool) -> None:
        self.isr &= ~(1 << ir)
        if rotate:
            self.lowest_priority = ir

    def write_command(self, value: int) -> None:
        """A write with A0=0: ICW1, OCW2 or OCW3, told apart by D4 and D3."""
        if value & 0x10:
            self._icw1(value)
        elif value & 0x08:
            self._ocw3(value)
        else:
            self._ocw2(value)

    def _icw1(self, value: int) -> None:
        # ICW1 clears IMR and ISR, gives IR7 the lowest priority, clears special mask
        # mode, selects IRR for status reads and resets the edge-sense circuit.
        self.icw1 = value
        self.imr = 0
        self.isr = 0
        self.irr &= self.level_triggered
        self.lowest_priority = 7
        self.special_mask = False
        self.read_isr = False
        self.poll = False
        self.auto_eoi = False
        self.rotate_on_auto_eoi = False
        self.special_fully_nested = False
        self.init_step = 2

    def _ocw2(self, value: int) -> None:
        command = value >> 5  # R, SL, EOI
        level = value & 7
        if command in (1, 5):  # non-specific EOI (5: and rotate)
            step = self._priority_order(self.isr)
            if step != 8:
                self._end_of_interrupt((self.lowest_priority + 1 + step) & 7, command == 5)
        elif command in (3, 7):  # specific EOI (7: and rotate)
            self._end_of_interrupt(level, command == 7)
        elif command == 0:
            self.rotate_on_auto_eoi = False
        elif command == 4:
            self.rotate_on_auto_eoi = True
        elif command == 6:  # set priority: L2-L0 becomes the lowest
            self.lowest_priority = level

    def _ocw3(self, value: int) -> None:
        if value & 0x04:
            self.poll = True
        if value & 0x02:
            self.read_isr = bool(value & 0x01)
        if value & 0x40:
            self.special_mask = bool(value & 0x20)

    def write_data(self, value: int) -> None:
        """A write with A0=1: ICW2-ICW4 during initialization, OCW1 after."""
        if self.init_step == 2:
            self.vector_base = value & 0xF8
            if not self.single:
                self.init_step = 3
            else:
                self.init_step = 4 if self.icw1 & 0x01 else 0
        elif self.init_step == 3:
            self.icw3 = value
            self.init_step = 4 if self.icw1 & 0x01 else 0
        elif self.init_step == 4:
            self.auto_eoi = bool(value & 0x02)
            self.special_fully_nested = bool(value & 0x10)
            self.init_step = 0
        else:
            self.imr = value


class Pic8259Pair(Device):
    """The PC/AT master/slave pair; ``set_irq`` is the sink of IRQ lines 0-15."""

    name = "pic"
    ports = [(0x20, 2), (0xA0, 2), (0x4D0, 2)]

    def __init__(self, on_output: Callable[[bool], None] | None = None) -> None:
        self.on_output = on_output
        self.master = Pic8259()
        self.slave = Pic8259()
        self._output = False
        self.reset()

    @property
    def output(self) -> bool:
        """The master's INT pin: the CPU's INTR input."""
        return self._output

    def reset(self) -> None:
        # The IR pins keep whatever the devices drive; everything else powers up cleared.
        levels = (self.master.input_levels, self.slave.input_levels)
        self.master = Pic8259(input_levels=levels[0])
        self.slave = Pic8259(input_levels=levels[1])
        self._update()

    # ---- wiring ----

    def set_irq(self, line: int, level: bool) -> None:
        """Drive input ``line`` (0-7 master, 8-15 slave) to ``level``."""
        if not 0 <= line < 16:
            return
        if line < 8:
            self.master.set_input(line, level)
        else:
            self.slave.set_input(line - 8, level)
        self._update()

    def _update(self) -> None:
        slave_int = self.slave.pending(is_master=False) is not None
        self.master.set_input(CASCADE_IR, slave_int)
        output = self.master.pending(is_master=True) is not None
        if output != self._output:
            self._output = output
            if self.on_output is not None:
                self.on_output(output)

    def acknowledge(self) -> int:
        """The INTA cycle: the vector the CPU takes, with IRR/ISR updated.

        When the request went away before the cycle, the 8259A answers with IR7 of the
        chip concerned and sets no ISR bit: the spurious IRQ7/IRQ15 a guest must check.
        """
        ir = self.master.pending(is_master=True)
        if ir is None:
            vector = self.master.vector_base + SPURIOUS_IR
        else:
            self.master.acknowledge(ir)
            if ir == CASCADE_IR and not self.master.single:
                slave_ir = self.slave.pending(is_master=False)
                if slave_ir is None:
                    vector = self.slave.vector_base + SPURIOUS_IR
                else:
                    self.slave.acknowledge(slave_ir)
                    vector = self.slave.vector_base + slave_ir
            else:
                vector = self.master.vector_base + ir
        self._update()
        return vector

    # ---- ports ----

    def _chip(self, port: int) -> Pic8259 | None:
        if port in (0x20, 0x21):
            return self.master
        if port in (0xA0, 0xA1):
            return self.slave
        return None

    def _poll(self, chip: Pic8259) -> int:
        """OCW3 poll: the read acts as INTA and returns 0x80 | IR (or 0 when none)."""
        chip.poll = False
        ir = chip.pending(is_master=chip is self.master)
        if ir is None:
            return 0
        chip.acknowledge(ir)
        self._update()
        return 0x80 | ir

    def _read_byte(self, port: int) -> int:
        if port in (0x4D0, 0x4D1):
            return (self.master, self.slave)[port - 0x4D0].elcr
        chip = self._chip(port)
        if chip is None:
            return 0xFF
        if port & 1:
            return chip.imr
        if chip.poll:
            return self._poll(chip)
        return chip.isr if chip.read_isr else chip.irr

    def _write_byte(self, port: int, value: int) -> None:
        if port in (0x4D0, 0x4D1):
            index = port - 0x4D0
            (self.master, self.slave)[index].elcr = value & ELCR_MASK[index]
        else:
            chip = self._chip(port)
            if chip is None:
                return
            if port & 1:
                chip.write_data(value)
            else:
                chip.write_command(value)
        self._update()

    def io_read(self, port: int, size: int) -> int:
        return read_split(self._read_byte, port, size)

    def io_write(self, port: int, size: int, value: int) -> None:
        write_split(self._write_byte, port, size, value)

    # ---- persistence ----

    def save(self) -> dict[str, Any]:
        return {"master": asdict(self.master), "slave": asdict(self.slave), "output": self._output}

    def restore(self, state: dict[str, Any]) -> None:
        names = {f.name for f in fields(Pic8259)}
        self.master = Pic8259(**{k: v for k, v in state["master"].items() if k in names})
        self.slave = Pic8259(**{k: v for k, v in state["slave"].items() if k in names})
        # The CPU's INTR pin is restored with the CPU: no callback here.
        self._output = bool(state["output"])
