"""8259A pair: what a guest sees after the PC/AT initialization sequence."""

from __future__ import annotations

from vmm.devices.pic8259 import Pic8259Pair


def init_pair(pic: Pic8259Pair, master_base: int = 0x20, slave_base: int = 0x28, icw4: int = 0x01) -> None:
    """The sequence a BIOS or Linux writes: ICW1-ICW4 on both chips, then unmask all."""
    pic.io_write(0x20, 1, 0x11)
    pic.io_write(0xA0, 1, 0x11)
    pic.io_write(0x21, 1, master_base)
    pic.io_write(0xA1, 1, slave_base)
    pic.io_write(0x21, 1, 0x04)
    pic.io_write(0xA1, 1, 0x02)
    pic.io_write(0x21, 1, icw4)
    pic.io_write(0xA1, 1, icw4)
    pic.io_write(0x21, 1, 0x00)
    pic.io_write(0xA1, 1, 0x00)


def make() -> tuple[Pic8259Pair, list[bool]]:
    seen: list[bool] = []
    pic = Pic8259Pair(on_output=seen.append)
    init_pair(pic)
    return pic, seen


def edge(pic: Pic8259Pair, line: int) -> None:
    pic.set_irq(line, True)
    pic.set_irq(line, False)


def test_irq_acknowledge_eoi() -> None:
    pic, seen = make()
    assert not pic.output
    edge(pic, 1)
    assert pic.output and seen == [True]
    assert pic.acknowledge() == 0x21
    assert not pic.output and seen == [True, False]
    pic.io_write(0x20, 1, 0x0B)  # OCW3: read ISR
    assert pic.io_read(0x20, 1) == 0x02
    pic.io_write(0x20, 1, 0x20)  # non-specific EOI
    assert pic.io_read(0x20, 1) == 0x00
    pic.io_write(0x20, 1, 0x0A)  # OCW3: read IRR
    assert pic.io_read(0x20, 1) == 0x00


def test_slave_irq_through_cascade() -> None:
    pic, _ = make()
    edge(pic, 14)
    assert pic.output
    assert pic.acknowledge() == 0x28 + 6
    pic.io_write(0xA0, 1, 0x0B)
    assert pic.io_read(0xA0, 1) == 0x40
    pic.io_write(0x20, 1, 0x0B)
    assert pic.io_read(0x20, 1) == 0x04  # the master has IR2 in service
    pic.io_write(0xA0, 1, 0x20)
    pic.io_write(0x20, 1, 0x20)
    assert pic.io_read(0x20, 1) == 0 and pic.io_read(0xA0, 1) == 0


def test_priority_and_nesting() -> None:
    pic, _ = make()
    edge(pic, 4)
    edge(pic, 1)
    assert pic.acknowledge() == 0x21  # IR1 beats IR4
    assert not pic.output  # IR4 is lower than IR1 in service
    edge(pic, 0)
    assert pic.output  # IR0 is higher: it nests
    assert pic.acknowledge() == 0x20
    pic.io_write(0x20, 1, 0x20)  # EOI IR0
    assert not pic.output
    pic.io_write(0x20, 1, 0x20)  # EOI IR1
    assert pic.output
    assert pic.acknowledge() == 0x24


def test_masking() -> None:
    pic, _ = make()
    pic.io_write(0x21, 1, 0x02)
    assert pic.io_read(0x21, 1) == 0x02
    edge(pic, 1)
    assert not pic.output
    pic.io_write(0x20, 1, 0x0A)
    assert pic.io_read(0x20, 1) == 0x02  # requested, but masked
    pic.io_write(0x21, 1, 0x00)
    assert pic.output and pic.acknowledge() == 0x21


def test_masked_cascade_blocks_slave() -> None:
    pic, _ = make()
    pic.io_write(0x21, 1, 0x04)
    edge(pic, 8)
    assert not pic.output
    pic.io_write(0x21, 1, 0x00)
    assert pic.acknowledge() == 0x28


def test_spurious_irq7_and_irq15() -> None:
    pic, _ = make()
    assert pic.acknowledge() == 0x27  # nothing pending
    pic.io_write(0x20, 1, 0x0B)
    assert pic.io_read(0x20, 1) == 0  # spurious: no ISR bit
    # Level mode on the slave line: the request vanishes before INTA.
    pic.io_write(0x4D1, 1, 0x08)  # IRQ11 level-triggered
    pic.set_irq(11, True)
    assert pic.output
    pic.set_irq(11, False)  # the line drops before the CPU's INTA cycle
    assert pic.acknowledge() == 0x2F  # the master latched IR2: the slave answers IR7
    pic.io_write(0xA0, 1, 0x0B)
    assert pic.io_read(0xA0, 1) == 0  # no ISR bit on the slave: the guest sends no slave EOI


def test_level_mode_rerequests_until_line_drops() -> None:
    pic = Pic8259Pair()
    pic.io_write(0x20, 1, 0x19)  # ICW1 with LTIM
    pic.io_write(0x21, 1, 0x08)
    pic.io_write(0x21, 1, 0x04)
    pic.io_write(0x21, 1, 0x01)
    pic.io_write(0x21, 1, 0x00)
    pic.set_irq(3, True)
    assert pic.acknowledge() == 0x0B
    pic.io_write(0x20, 1, 0x20)
    assert pic.output  # still high: asks again
    pic.set_irq(3, False)
    assert not pic.output


def test_edge_needs_new_transition() -> None:
    pic, _ = make()
    pic.set_irq(3, True)
    assert pic.acknowledge() == 0x23
    pic.io_write(0x20, 1, 0x20)
    assert not pic.output  # line still high, but no new edge
    pic.set_irq(3, False)
    pic.set_irq(3, True)
    assert pic.output


def test_auto_eoi_and_rotation() -> None:
    pic = Pic8259Pair()
    init_pair(pic, icw4=0x03)  # AEOI
    edge(pic, 5)
    assert pic.acknowledge() == 0x25
    pic.io_write(0x20, 1, 0x0B)
    assert pic.io_read(0x20, 1) == 0  # AEOI: nothing in service
    pic.io_write(0x20, 1, 0xC4)  # set priority: IR4 lowest, IR5 highest
    edge(pic, 0)
    edge(pic, 6)
    assert pic.acknowledge() == 0x26
    assert pic.acknowledge() == 0x20


def test_specific_and_rotating_eoi() -> None:
    pic, _ = make()
    edge(pic, 3)
    assert pic.acknowledge() == 0x23
    pic.io_write(0x20, 1, 0xE3)  # rotate on specific EOI for IR3: IR4 now highest
    edge(pic, 0)
    edge(pic, 5)
    assert pic.acknowledge() == 0x25
    pic.io_write(0x20, 1, 0x65)  # specific EOI IR5
    assert pic.acknowledge() == 0x20


def test_poll_command() -> None:
    pic, _ = make()
    edge(pic, 6)
    pic.io_write(0x20, 1, 0x0C)  # OCW3 poll
    assert pic.io_read(0x20, 1) == 0x86
    pic.io_write(0x20, 1, 0x0B)
    assert pic.io_read(0x20, 1) == 0x40
    pic.io_write(0x20, 1, 0x0C)
    assert pic.io_read(0x20, 1) == 0x00


def test_special_mask_mode() -> None:
    pic, _ = make()
    edge(pic, 1)
    pic.acknowledge()
    pic.io_write(0x21, 1, 0x02)
    pic.io_write(0x20, 1, 0x68)  # set special mask mode
    edge(pic, 5)
    assert pic.output and pic.acknowledge() == 0x25


def test_save_restore_behaves_identically() -> None:
    pic, _ = make()
    edge(pic, 3)
    edge(pic, 12)
    pic.acknowledge()
    copy = Pic8259Pair()
    copy.restore(pic.save())
    for p in (pic, copy):
        edge(p, 1)
    results = []
    for p in (pic, copy):
        seq = [p.acknowledge(), p.output]
        p.io_write(0x20, 1, 0x20)
        seq += [p.acknowledge(), p.io_read(0x20, 1), p.io_read(0xA0, 1), p.output]
        results.append(seq)
    assert results[0] == results[1]
    assert copy.save() == pic.save()
