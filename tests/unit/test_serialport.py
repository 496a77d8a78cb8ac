"""COM1 on vmm's stdout (vmm.serialport.StdoutSerial): buffered as C's stdio buffers it,
even when Python's own stdout is unbuffered (PYTHONUNBUFFERED, as in this environment)."""

from __future__ import annotations

import os

from vmm.serialport import StdoutSerial


def _pending(fd: int) -> bytes:
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 4096)
    except BlockingIOError:
        return b""


def test_a_pipe_gets_whole_lines_and_a_partial_line_at_the_next_poll():
    read_end, write_end = os.pipe()
    with open(write_end, "wb", buffering=0) as stream:
        serial = StdoutSerial(stream)
        for byte in b"Booting":
            serial.write(bytes((byte,)))
        assert _pending(read_end) == b""  # one write per byte would cost more than the UART
        serial.write(b"\n")
        assert _pending(read_end) == b"Booting\n"
        serial.write(b"toyos$ ")
        assert _pending(read_end) == b""
        serial.poll()  # between slices: the prompt goes out before the guest waits for input
        assert _pending(read_end) == b"toyos$ "
        serial.write(b"bye")
        serial.close()
        assert _pending(read_end) == b"bye"
    os.close(read_end)


def test_a_terminal_gets_every_byte_at_once():
    main, tty = os.openpty()
    with open(tty, "wb", buffering=0) as stream:
        serial = StdoutSerial(stream)
        serial.write(b"$")
        assert _pending(main) == b"$"  # typed characters echo without waiting for a slice
    os.close(main)
