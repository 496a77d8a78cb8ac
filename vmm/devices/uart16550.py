"""The National Semiconductor PC16550D UART (COM1: 0x3F8, IRQ4).

Source: National Semiconductor, "PC16550D Universal Asynchronous Receiver/Transmitter
with FIFOs" datasheet (June 1995): Table II (register summary), sections 8.4 (LSR),
8.6 (IIR and interrupt priorities, Table IV), 8.5 (FCR), 8.7 (IER), 8.8 (MCR and
loopback), 8.9 (MSR).

Emulated: RBR/THR, IER, IIR with FIFO bits, FCR (16-byte FIFOs, RX trigger levels 1, 4,
8, 14, FIFO clears), LCR with DLAB and the DLL/DLM divisor latch, MCR with loopback
(TX looped to RX, modem outputs looped to the MSR inputs), LSR (DR, OE, THRE, TEMT,
FIFO error), MSR with delta bits, SCR; interrupt priority line status > received data
or character timeout > THR empty > modem status, and the THRE interrupt rules of
section 8.6 (set when THR empties or when ETBEI is enabled with THR empty; cleared by
an IIR read that reports it or by a THR write).
Transmission is instantaneous: each THR byte goes to ``output`` at once, so THRE and
TEMT read back set. Host input waits in an unbounded host-side queue and enters the
16-byte RX FIFO as the guest drains it; with data below the trigger level and nothing
more queued, the character-timeout interrupt is reported at once (there is no line
timing to wait for). Not emulated: baud rate timing, parity/framing/break errors
(nothing produces them), DMA mode signalling (FCR bit 3 is stored). As in QEMU, MCR
OUT2 does not gate the interrupt output.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from vmm.devices.base import Device
from vmm.irq import IrqLine, NullIrqLine

FIFO_SIZE = 16
IDLE_LSR_POLLS = 64  # consecutive LSR reads with nothing to send: a polling reader
RX_TRIGGER_LEVELS = (1, 4, 8, 14)

IER_ERBFI, IER_ETBEI, IER_ELSI, IER_EDSSI = 0x01, 0x02, 0x04, 0x08
IIR_NO_INT, IIR_MODEM, IIR_THRE, IIR_RDA, IIR_RLS, IIR_TIMEOUT, IIR_FIFO = 0x01, 0x00, 0x02, 0x04, 0x06, 0x0C, 0xC0
FCR_ENABLE, FCR_CLEAR_RX, FCR_CLEAR_TX = 0x01, 0x02, 0x04
LCR_DLAB = 0x80
MCR_DTR, MCR_RTS, MCR_OUT1, MCR_OUT2, MCR_LOOP = 0x01, 0x02, 0x04, 0x08, 0x10
LSR_DR, LSR_OE, LSR_PE, LSR_FE, LSR_BI, LSR_THRE, LSR_TEMT, LSR_FIFO_ERR = 1, 2, 4, 8, 16, 32, 64, 128
LSR_ERRORS = LSR_OE | LSR_PE | LSR_FE | LSR_BI
MSR_CTS, MSR_DSR, MSR_RI, MSR_DCD = 0x10, 0x20, 0x40, 0x80
MSR_TERI = 0x04
HOST_LINES = MSR_CTS | MSR_DSR | MSR_DCD  # the host end is always ready, as QEMU's chardev


class Uart16550(Device):
    """One 16550 at ``base`` (eight ports) on ``irq``."""

    name = "uart"

    def __init__(self, irq: IrqLine | None = None, output: Callable[[int], None] | None = None,
                 base: int = 0x3F8) -> None:  # fmt: skip
        self.irq = irq if irq is not None else NullIrqLine(4)
        self._output = output or (lambda _byte: None)
        self.base = base
        self.ports = [(base, 8)]
        self.host_queue: deque[int] = deque()  # host input not yet in the RX FIFO
        self.reset()

    def reset(self) -> None:
        self.ier = 0
        self.lcr = 0
        self.mcr = 0
        self.lsr = LSR_THRE | LSR_TEMT
        self.msr = HOST_LINES
        self.scr = 0
        self.dll = 0x0C  # 9600 baud, a common power-on divisor
        self.dlm = 0
        self.fcr = 0
        self.rx_fifo: deque[int] = deque()
        self.thr_interrupt = False  # the THRE interrupt is pending
        self._rbr_read = False
        self._idle_lsr_polls = 0
        self._refill()
        self._update_irq()

    @property
    def receive_interrupt_enabled(self) -> bool:
        """IER bit 0: the guest's driver takes received bytes by interrupt (a serial console)."""
        return bool(self.ier & IER_ERBFI)

    @property
    def listening(self) -> bool:
        """Whether the guest reads COM1 now (for host input that must not arrive before).

        Not a register: the host side's view of the guest's driver. True once receive
        interrupts are enabled, RBR was read, or LSR was polled many times in a row with
        nothing to send (a polling reader); a receive-FIFO clear (re)starts the watch,
        because a guest that clears the FIFO would drop what was waiting there."""
        return bool(self.ier & IER_ERBFI) or self._rbr_read or self._idle_lsr_polls >= IDLE_LSR_POLLS

    # ---- receive side ----

    @property
    def fifo_enabled(self) -> bool:
        return bool(self.fcr & FCR_ENABLE)

    @property
    def rx_capacity(self) -> int:
        return FIFO_SIZE if self.fifo_enabled else 1

    @property
    def loopback(self) -> bool:
        return bool(self.mcr & MCR_LOOP)

    def _refill(self) -> None:
        # In loopback the serial input is disconnected: host bytes wait in the queue.
        while not self.loopback and self.host_queue and len(self.rx_fifo) < self.rx_capacity:
            self.rx_fifo.append(self.host_queue.popleft())
        self.lsr = self.lsr | LSR_DR if self.rx_fifo else self.lsr & ~LSR_DR

    def _receive_byte(self, byte: int) -> None:
        """A byte arriving from the line (loopback): overrun if the FIFO is full."""
        if len(self.rx_fifo) >= self.rx_capacity:
            self.lsr |= LSR_OE  # the shift register's byte is lost; the FIFO keeps its own
        else:
            self.rx_fifo.append(byte)
        self._refill()

    def receive(self, data: bytes) -> None:
        """Host input for the guest (typed text, a pasted file)."""
        self.host_queue.extend(data)
        self._refill()
        self._update_irq()

    def rx_pending(self) -> bool:
        """True while the guest has not read all the host input."""
        return bool(self.rx_fifo or self.host_queue)

    # ---- interrupts ----

    def _rx_trigger(self) -> int:
        return RX_TRIGGER_LEVELS[self.fcr >> 6] if self.fifo_enabled else 1

    def _interrupt_id(self) -> int:
        """IIR bits 3-0: the highest-priority pending, enabled interrupt (Table IV)."""
        if self.ier & IER_ELSI and self.lsr & LSR_ERRORS:
            return IIR_RLS
        if self.ier & IER_ERBFI and self.rx_fifo:
            if len(self.rx_fifo) >= self._rx_trigger():
                return IIR_RDA
            return IIR_TIMEOUT
        if self.ier & IER_ETBEI and self.thr_interrupt:
            return IIR_THRE
        if self.ier & IER_EDSSI and self.msr & 0x0F:
            return IIR_MODEM
        return IIR_NO_INT

    def _update_irq(self) -> None:
        self.irq.set(self._interrupt_id() != IIR_NO_INT)

    # ---- transmit side ----

    def _transmit(self, byte: int) -> None:
        self.thr_interrupt = False
        self.lsr &= ~(LSR_THRE | LSR_TEMT)
        self._update_irq()  # the THRE source drops here: a later one is a fresh edge
        if self.loopback:
            self._receive_byte(byte)
        else:
            self._output(byte)
        self.lsr |= LSR_THRE | LSR_TEMT
        self.thr_interrupt = True
        self._update_irq()

    # ---- modem lines ----

    def _modem_inputs(self) -> int:
        if not self.loopback:
            return HOST_LINES
        mcr = self.mcr
        return (
            (MSR_CTS if mcr & MCR_RTS else 0)
            | (MSR_DSR if mcr & MCR_DTR else 0)
            | (MSR_RI if mcr & MCR_OUT1 else 0)
            | (MSR_DCD if mcr & MCR_OUT2 else 0)
        )

    def _set_modem_inputs(self, lines: int) -> None:
        changed = (self.msr ^ lines) & 0xF0
        delta = (changed >> 4) & 0x0B  # DCTS, DDSR, DDCD on any change
        if changed & MSR_RI and not lines & MSR_RI:
            delta |= MSR_TERI  # TERI: trailing edge of RI only
        self.msr = lines | (self.msr & 0x0F) | delta

    # ---- registers ----

    def _read_register(self, offset: int) -> int:
        dlab = self.lcr & LCR_DLAB
        if offset == 0:
            if dlab:
                return self.dll
            value = self.rx_fifo.popleft() if self.rx_fifo else 0
            self._rbr_read = True
            self._refill()
            self._update_irq()
            return value
        if offset == 1:
            return self.dlm if dlab else self.ier
        if offset == 2:
            interrupt = self._interrupt_id()
            if interrupt == IIR_THRE:
                self.thr_interrupt = False  # reading IIR when THRE is the source clears it
                self._update_irq()
            return interrupt | (IIR_FIFO if self.fifo_enabled else 0)
        if offset == 3:
            return self.lcr
        if offset == 4:
            return self.mcr
        if offset == 5:
            if not self.rx_fifo:
                self._idle_lsr_polls += 1
            value = self.lsr
            if self.fifo_enabled and self.lsr & LSR_ERRORS:
                value |= LSR_FIFO_ERR
            self.lsr &= ~LSR_ERRORS  # reading LSR clears OE, PE, FE, BI
            self._update_irq()
            return value
        if offset == 6:
            value = self.msr
            self.msr &= 0xF0
            self._update_irq()
            return value
        return self.scr

    def _write_register(self, offset: int, value: int) -> None:
        dlab = self.lcr & LCR_DLAB
        if offset == 0:
            if dlab:
                self.dll = value
            else:
                self._idle_lsr_polls = 0  # LSR was polled to send, not to receive
                self._transmit(value)
            return
        if offset == 1:
            if dlab:
                self.dlm = value
                return
            enabling_thre = value & IER_ETBEI and not self.ier & IER_ETBEI
            self.ier = value & 0x0F
            if enabling_thre and self.lsr & LSR_THRE:
                self.thr_interrupt = True  # ETBEI set with THR empty interrupts at once
        elif offset == 2:
            self._write_fcr(value)
        elif offset == 3:
            self.lcr = value
        elif offset == 4:
            self.mcr = value & 0x1F
            self._set_modem_inputs(self._modem_inputs())
            self._refill()
        elif offset == 7:
            self.scr = value
        # LSR and MSR are read-only (writing them is a factory test on the real part).
        self._update_irq()

    def _write_fcr(self, value: int) -> None:
        if (value ^ self.fcr) & FCR_ENABLE:
            self.rx_fifo.clear()  # changing FIFO mode clears both FIFOs
        if value & FCR_CLEAR_RX:
            self.rx_fifo.clear()
            self.lsr &= ~LSR_ERRORS
            self._rbr_read = False
            self._idle_lsr_polls = 0
        self.fcr = value & 0xC9  # bits 1 and 2 self-clear
        if not self.fifo_enabled:
            self.fcr = 0
        self._refill()

    def io_read(self, port: int, size: int) -> int:
        offset = port - self.base
        if not 0 <= offset < 8:
            return (1 << (8 * max(1, min(size, 4)))) - 1
        return self._read_register(offset)

    def io_write(self, port: int, size: int, value: int) -> None:
        offset = port - self.base
        if 0 <= offset < 8:
            self._write_register(offset, value & 0xFF)

    # ---- persistence ----

    def save(self) -> dict[str, Any]:
        return {
            "ier": self.ier, "lcr": self.lcr, "mcr": self.mcr, "lsr": self.lsr, "msr": self.msr,
            "scr": self.scr, "dll": self.dll, "dlm": self.dlm, "fcr": self.fcr,
            "rx_fifo": bytes(self.rx_fifo), "host_queue": bytes(self.host_queue),
            "thr_interrupt": self.thr_interrupt, "irq": self.irq.level,
            "rbr_read": self._rbr_read, "idle_lsr_polls": self._idle_lsr_polls,
        }  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        for name in ("ier", "lcr", "mcr", "lsr", "msr", "scr", "dll", "dlm", "fcr"):
            setattr(self, name, int(state[name]) & 0xFF)
        self.rx_fifo = deque(state["rx_fifo"][:FIFO_SIZE])
        self.host_queue = deque(state["host_queue"])
        self.thr_interrupt = bool(state["thr_interrupt"])
        self._rbr_read = bool(state.get("rbr_read", False))
        self._idle_lsr_polls = int(state.get("idle_lsr_polls", 0))
        self.irq.level = bool(state["irq"])  # the PIC restores its own view of the line
