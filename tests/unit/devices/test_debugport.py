"""POST code port, Bochs/QEMU debug console and the isa-debug-exit port."""

from __future__ import annotations

from vmm.devices.debugport import DebugConsole, ExitPort, PostCodePort


def test_post_codes() -> None:
    seen: list[int] = []
    post = PostCodePort(on_post=seen.append)
    post.io_write(0x80, 1, 0x12)
    post.io_write(0x80, 1, 0x34)
    assert seen == [0x12, 0x34] and post.last_code == 0x34
    assert post.io_read(0x80, 1) == 0xFF
    for i in range(1000):
        post.io_write(0x80, 1, i)
    assert len(post.history) == 256
    copy = PostCodePort()
    copy.restore(post.save())
    copy.io_write(0x80, 1, 0x55)
    post.io_write(0x80, 1, 0x55)
    assert copy.save() == post.save()


def test_debug_console() -> None:
    out = bytearray()
    con = DebugConsole(out.append)
    for byte in b"hi\n":
        con.io_write(0xE9, 1, byte)
    con.io_write(0xE9, 2, 0x4121)
    assert out == b"hi\n!"
    assert con.io_read(0xE9, 1) == 0xE9
    copy = DebugConsole(out.append)
    copy.restore(con.save())
    copy.io_write(0xE9, 1, ord("x"))
    assert out.endswith(b"x")


def test_exit_port_status() -> None:
    statuses: list[int] = []
    port = ExitPort(statuses.append)
    port.io_write(0xF4, 1, 0x10)
    port.io_write(0xF4, 4, 0)
    assert statuses == [0x21, 1]
    copy = ExitPort(statuses.append)
    copy.restore(port.save())
    copy.io_write(0xF4, 1, 1)
    assert statuses[-1] == 3
