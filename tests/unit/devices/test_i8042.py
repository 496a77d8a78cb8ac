"""8042 keyboard controller and port 0x92: A20, reset, keyboard replies and typed keys."""

from __future__ import annotations

from vmm.devices.i8042 import I8042, scancodes_for
from vmm.devices.port92 import FastA20
from vmm.irq import IrqLine


class Rig:
    def __init__(self) -> None:
        self.a20: list[bool] = []
        self.resets = 0
        self.irq: list[bool] = []
        line = IrqLine(1, lambda _n, level: self.irq.append(level))
        self.kbc = I8042(set_a20=self.a20.append, request_reset=self._reset, irq1=line)

    def _reset(self) -> None:
        self.resets += 1

    def command(self, value: int, data: int | None = None) -> None:
        self.kbc.io_write(0x64, 1, value)
        if data is not None:
            self.kbc.io_write(0x60, 1, data)

    def read_all(self) -> list[int]:
        out = []
        while self.kbc.io_read(0x64, 1) & 1:
            out.append(self.kbc.io_read(0x60, 1))
        return out


def test_self_test_interface_test_and_sys_flag() -> None:
    rig = Rig()
    assert rig.kbc.io_read(0x64, 1) & 0x04 == 0
    rig.command(0xAA)
    assert rig.kbc.io_read(0x64, 1) & 0x05 == 0x05
    assert rig.read_all() == [0x55]
    rig.command(0xAB)
    assert rig.read_all() == [0x00]


def test_command_byte_read_write() -> None:
    rig = Rig()
    rig.command(0x20)
    assert rig.read_all() == [0x41]
    rig.command(0x60, 0x65)
    assert rig.kbc.io_read(0x64, 1) & 0x08 == 0  # last write went to the data port
    rig.command(0x20)
    assert rig.read_all() == [0x65]


def test_a20_through_output_port_and_dd_df() -> None:
    rig = Rig()
    rig.command(0xD0)
    assert rig.read_all()[0] & 0x03 == 0x03  # power-on: A20 on, reset line high
    rig.command(0xD1, 0xDD)  # A20 off
    assert rig.a20 == [False]
    rig.command(0xD1, 0xDF)
    assert rig.a20 == [False, True]
    rig.command(0xDD)
    rig.command(0xDF)
    assert rig.a20 == [False, True, False, True]
    assert rig.resets == 0


def test_reset_by_pulse_and_output_port() -> None:
    rig = Rig()
    rig.command(0xFE)
    assert rig.resets == 1
    rig.command(0xFF)  # pulses nothing
    assert rig.resets == 1
    rig.command(0xD1, 0xDE)  # bit 0 low
    assert rig.resets == 2


def test_keyboard_commands() -> None:
    rig = Rig()
    rig.kbc.io_write(0x60, 1, 0xFF)
    assert rig.read_all() == [0xFA, 0xAA]
    rig.kbc.io_write(0x60, 1, 0xED)
    rig.kbc.io_write(0x60, 1, 0x07)
    assert rig.read_all() == [0xFA, 0xFA] and rig.kbc.leds == 7
    rig.kbc.io_write(0x60, 1, 0xEE)
    assert rig.read_all() == [0xEE]
    rig.kbc.io_write(0x60, 1, 0xF2)
    assert rig.read_all() == [0xFA, 0xAB, 0x41]
    rig.kbc.io_write(0x60, 1, 0xF4)
    assert rig.read_all() == [0xFA]


def test_typed_text_becomes_set1_codes_with_irq1() -> None:
    rig = Rig()
    assert scancodes_for("aA\n") == bytes([0x1E, 0x9E, 0x2A, 0x1E, 0x9E, 0xAA, 0x1C, 0x9C])
    rig.kbc.key_input("a")
    assert rig.irq == [True]
    assert rig.kbc.io_read(0x60, 1) == 0x1E
    assert rig.irq == [True, False, True]  # a fresh edge for the break code
    assert rig.kbc.io_read(0x60, 1) == 0x9E
    assert rig.irq[-1] is False and not rig.kbc.io_read(0x64, 1) & 1


def test_disabled_keyboard_holds_keys_and_interrupts_off() -> None:
    rig = Rig()
    rig.command(0xAD)
    rig.kbc.key_input("b")
    assert not rig.kbc.io_read(0x64, 1) & 1
    rig.command(0x60, 0x40)  # interrupts off
    rig.command(0xAE)
    assert rig.read_all() == [0x30, 0xB0]
    assert rig.irq == []


def test_port92_fast_a20_and_reset() -> None:
    a20: list[bool] = []
    resets: list[int] = []
    port = FastA20(set_a20=a20.append, request_reset=lambda: resets.append(1))
    port.io_write(0x92, 1, 0x02)
    assert a20 == [True] and port.io_read(0x92, 1) == 0x02
    port.io_write(0x92, 1, 0x03)
    assert resets == [1]
    port.io_write(0x92, 1, 0x03)
    assert resets == [1]  # only a 0-to-1 transition resets
    copy = FastA20(set_a20=a20.append, request_reset=lambda: resets.append(1))
    copy.restore(port.save())
    assert copy.io_read(0x92, 1) == port.io_read(0x92, 1)


def test_save_restore_behaves_identically() -> None:
    rig = Rig()
    rig.kbc.key_input("Hi")
    rig.kbc.io_read(0x60, 1)
    rig.kbc.io_write(0x60, 1, 0xED)
    other = Rig()
    other.kbc.restore(rig.kbc.save())
    for r in (rig, other):
        r.kbc.io_write(0x60, 1, 0x02)
        r.command(0xD1, 0xDD)
    assert rig.read_all() == other.read_all()
    assert rig.a20 == other.a20
    assert rig.kbc.save() == other.kbc.save()
