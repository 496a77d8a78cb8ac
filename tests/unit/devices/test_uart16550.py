"""16550 UART: registers and interrupts as a BIOS or Linux's 8250 driver sees them."""

from __future__ import annotations

from vmm.devices.uart16550 import Uart16550
from vmm.irq import IrqLine

BASE = 0x3F8
RBR, IER, IIR, LCR, MCR, LSR, MSR, SCR = range(8)


class Rig:
    def __init__(self) -> None:
        self.sent = bytearray()
        self.irq: list[bool] = []
        self.line = IrqLine(4, lambda _n, level: self.irq.append(level))
        self.uart = Uart16550(self.line, output=self.sent.append)

    def rd(self, reg: int) -> int:
        return self.uart.io_read(BASE + reg, 1)

    def wr(self, reg: int, value: int) -> None:
        self.uart.io_write(BASE + reg, 1, value)


def test_transmit_is_instant() -> None:
    rig = Rig()
    assert rig.rd(LSR) == 0x60  # THRE | TEMT
    for byte in b"OK\n":
        rig.wr(RBR, byte)
    assert bytes(rig.sent) == b"OK\n"
    assert rig.rd(LSR) & 0x60 == 0x60


def test_dlab_divisor_latch() -> None:
    rig = Rig()
    rig.wr(LCR, 0x83)
    rig.wr(0, 0x01)
    rig.wr(1, 0x00)
    assert rig.rd(0) == 0x01 and rig.rd(1) == 0x00
    rig.wr(LCR, 0x03)
    assert rig.rd(IER) == 0
    rig.wr(RBR, ord("x"))
    assert rig.sent == b"x"  # DLAB clear: offset 0 is THR again
    assert rig.uart.dll == 1 and rig.rd(LCR) == 0x03


def test_scratch_register() -> None:
    rig = Rig()
    rig.wr(SCR, 0x5A)
    assert rig.rd(SCR) == 0x5A


def test_receive_and_line_status() -> None:
    rig = Rig()
    rig.uart.receive(b"ab")
    assert rig.uart.rx_pending()
    assert rig.rd(LSR) & 0x01
    assert rig.rd(RBR) == ord("a")  # FIFOs off: one byte at a time, the rest waits
    assert rig.rd(RBR) == ord("b")
    assert not rig.rd(LSR) & 0x01 and not rig.uart.rx_pending()


def test_fifo_trigger_level_and_timeout_interrupt() -> None:
    rig = Rig()
    rig.wr(IIR, 0xC7)  # enable FIFOs, clear both, trigger 14
    assert rig.rd(IIR) & 0xC0 == 0xC0
    rig.wr(IER, 0x01)
    rig.uart.receive(bytes(range(20)))
    assert rig.rd(IIR) & 0x0F == 0x04  # 16 bytes >= 14: received data available
    assert rig.irq[-1] is True
    data = [rig.rd(RBR) for _ in range(10)]
    assert data == list(range(10))
    assert rig.rd(IIR) & 0x0F == 0x0C  # 10 left, nothing more queued: character timeout
    data += [rig.rd(RBR) for _ in range(10)]
    assert data == list(range(20))
    assert rig.rd(IIR) & 0x0F == 0x01 and rig.irq[-1] is False


def test_thre_interrupt_rules() -> None:
    rig = Rig()
    rig.wr(IER, 0x02)  # enabling ETBEI with THR empty: interrupt at once
    assert rig.irq == [True]
    assert rig.rd(IIR) == 0x02
    assert rig.irq == [True, False]  # the IIR read that reported THRE cleared it
    assert rig.rd(IIR) == 0x01
    rig.wr(RBR, 0x41)  # a THR write: transmitted, THR empty again, a fresh edge
    assert rig.irq[-1] is True and rig.rd(IIR) == 0x02
    rig.wr(IER, 0x00)
    assert rig.irq[-1] is False
    rig.wr(IER, 0x02)
    assert rig.irq[-1] is True


def test_interrupt_priority() -> None:
    rig = Rig()
    rig.wr(MCR, 0x10)  # loopback
    rig.wr(IER, 0x0F)
    for byte in range(3):
        rig.wr(RBR, byte)  # FIFOs off: the 2nd and 3rd overrun the 1-byte buffer
    assert rig.rd(IIR) == 0x06  # line status first
    assert rig.rd(LSR) & 0x03 == 0x03  # DR and OE; reading LSR clears OE
    assert rig.rd(IIR) == 0x04  # then received data
    assert rig.rd(RBR) == 0
    assert rig.rd(IIR) == 0x02  # then THR empty
    assert rig.rd(IIR) == 0x00  # then modem status: entering loopback dropped CTS, DSR, DCD
    assert rig.rd(MSR) == 0x0B
    assert rig.rd(IIR) == 0x01


def test_loopback_modem_lines() -> None:
    rig = Rig()
    rig.wr(MCR, 0x10)
    assert rig.rd(MSR) & 0xF0 == 0x00
    rig.wr(MCR, 0x1A)  # loop, RTS, OUT2 (what Linux's 8250 probe writes)
    assert rig.rd(MSR) & 0xF0 == 0x90
    rig.wr(MCR, 0x1F)
    assert rig.rd(MSR) & 0xF0 == 0xF0
    rig.wr(MCR, 0x1B)  # RI falls: TERI
    assert rig.rd(MSR) & 0x04
    rig.wr(MCR, 0x00)
    assert rig.rd(MSR) & 0xF0 == 0xB0  # host end: CTS, DSR, DCD


def test_loopback_data_does_not_reach_host_and_holds_input() -> None:
    rig = Rig()
    rig.wr(IIR, 0x01)
    rig.wr(MCR, 0x10)
    rig.uart.receive(b"host")
    rig.wr(RBR, 0x55)
    assert rig.sent == b""
    assert rig.rd(RBR) == 0x55 and not rig.rd(LSR) & 1
    rig.wr(MCR, 0x00)
    assert rig.rd(RBR) == ord("h")


def test_save_restore_behaves_identically() -> None:
    rig = Rig()
    rig.wr(IIR, 0x41)
    rig.wr(IER, 0x03)
    rig.uart.receive(b"0123456789abcdefXYZ")
    rig.rd(RBR)
    other = Rig()
    other.uart.restore(rig.uart.save())
    assert other.uart.save() == rig.uart.save()
    seq = []
    for r in (rig, other):
        r.wr(RBR, 0x33)
        seq.append([r.rd(IIR)] + [r.rd(RBR) for _ in range(20)] + [r.rd(IIR), r.rd(LSR), bytes(r.sent)])
    assert seq[0] == seq[1]
