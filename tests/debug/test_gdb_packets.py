"""The gdb stub's packet layer against malformed and hostile input (issue 23).

Packets go through a socket pair into the real ``GdbStub.serve`` loop; what comes back
(acks, replies) is the test: a malformed packet gets an error reply or ``-``, never a
traceback, and the stub keeps answering. A seeded fuzz run feeds the packet reader and
the stub random packets.
"""

from __future__ import annotations

import random
import socket
import threading

import pytest

from tests.cpu.rom import assemble_rom
from tests.debug.test_watch import COUNTER
from vmm.config import MachineConfig, SerialConfig
from vmm.debug.gdbregs import LAYOUT
from vmm.debug.gdbstub import BAD_PACKET, MAX_MONITOR_COUNT, GdbStub, PacketReader, frame
from vmm.machine import Machine

FUZZ_CASES = 10_000


def raw_frame(body: bytes) -> bytes:
    return b"$" + body + b"#" + f"{sum(body) & 0xFF:02x}".encode()


@pytest.fixture
def stub(tmp_path):
    rom = tmp_path / "counter.bin"
    rom.write_bytes(assemble_rom(COUNTER))
    machine = Machine(MachineConfig(bios=rom, serial=SerialConfig("none")))
    stub = GdbStub(machine, "127.0.0.1:0")
    ours, theirs = socket.socketpair()
    stub.conn = ours
    yield stub, theirs
    stub.close()
    theirs.close()


def replies(data: bytes) -> list[bytes]:
    """The reply bodies in what the stub sent (acks left out)."""
    reader = PacketReader()
    reader.feed(data.replace(b"+", b"").replace(b"-", b""))
    return [event.encode("latin-1") for event in reader.events() if event is not BAD_PACKET and event != "\x03"]


def talk(stub, theirs, *packets: bytes) -> bytes:
    theirs.sendall(b"".join(packets) + raw_frame(b"k"))
    stub.serve()
    theirs.setblocking(False)
    out = b""
    while True:
        try:
            chunk = theirs.recv(1 << 20)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


MALFORMED = [
    b"pzz",
    b"p",
    b"mzz,10",
    b"m1000",
    b"M7c00,2:abc",
    b"M7c00,1:zz",
    b"Z0,zz,1",
    b"Z0",
    b"Z2,7c00",
    b"Z2,7c00,0",
    b"z1",
    b"qXfer:features:read:target.xml:zz",
    b"qXfer:features:read:target.xml:",
    b"qXfer:features:read:other.xml:0,10",
    b"qRcmd,zz",
    b"qRcmd,ff",
    b"m" + b"f" * 40 + b",1",
    b"pffffffffffffffffffff",
    b"M0,ffffffffffffffffff:00",
]


@pytest.mark.parametrize("body", MALFORMED, ids=[b.decode() for b in MALFORMED])
def test_malformed_packet_gets_an_error_and_the_stub_answers_on(stub, body):
    gdb_stub, theirs = stub
    out = talk(gdb_stub, theirs, raw_frame(body), raw_frame(b"?"))
    got = replies(out)
    assert len(got) == 2, out
    assert got[0].startswith(b"E") or got[0] == b"", got
    assert got[1] == b"S05"


def test_bad_checksum_is_answered_with_minus_and_the_resent_packet_is_served(stub):
    gdb_stub, theirs = stub
    out = talk(gdb_stub, theirs, b"$?#00", raw_frame(b"?"), b"$g#zz")
    assert out.startswith(b"-+$S05#")
    assert out.count(b"-") == 2


def test_escapes_and_run_length_encoding_are_undone(stub):
    gdb_stub, theirs = stub
    # M7c00,4:00000000 with the zeros run-length encoded ("0* " = '0' and 3 more), and
    # an escaped '}' inside a qRcmd that is not hex.
    out = talk(gdb_stub, theirs, raw_frame(b"M7c00,4:0* 0000"), raw_frame(b"m7c00,4"), raw_frame(b"qRcmd,}]"))
    assert replies(out) == [b"OK", b"00000000", b"E22"]


def test_monitor_step_with_a_huge_count_is_refused_not_run(stub):
    gdb_stub, theirs = stub
    command = f"step {MAX_MONITOR_COUNT * 1000}".encode().hex().encode()
    out = talk(gdb_stub, theirs, raw_frame(b"qRcmd," + command))
    text = bytes.fromhex(replies(out)[0][1:].decode()).decode()
    assert text.startswith(f"error: the count {MAX_MONITOR_COUNT * 1000} is above")
    assert gdb_stub.dbg.instructions == 0


def test_gdb_going_away_mid_continue_stops_the_guest_and_the_next_gdb_is_served(stub):
    gdb_stub, theirs = stub
    theirs.sendall(raw_frame(b"c"))
    theirs.close()  # gdb vanishes while the guest runs: the guest stops, the stub listens
    before = None
    with socket.create_connection(gdb_stub.address) as second:
        second.sendall(raw_frame(b"qRcmd," + b"status".hex().encode()) + raw_frame(b"?") + raw_frame(b"D"))
        result = [None]
        thread = threading.Thread(target=lambda: result.__setitem__(0, gdb_stub.serve()))
        thread.start()
        data = b""
        while len(replies(data)) < 4:  # monitor output, OK, S05, OK (the detach)
            chunk = second.recv(1 << 16)
            assert chunk, data
            data += chunk
        before = gdb_stub.sessions
    thread.join()
    # After the second gdb detached the guest ran on to its end.
    assert replies(data)[1:] == [b"OK", b"S05", b"OK"]
    assert before == 1 and result[0].reason == "exit-port" and result[0].status == 33
    assert b"mode" in bytes.fromhex(replies(data)[0][1:].decode())


def test_vmust_reply_empty_gets_an_empty_reply_and_the_layout_is_x86_64(stub):
    gdb_stub, theirs = stub
    out = talk(gdb_stub, theirs, raw_frame(b"vMustReplyEmpty"), raw_frame(b"g"), raw_frame(b"p10"))
    got = replies(out)
    assert got[0] == b""
    assert len(got[1]) == 2 * sum(reg.bits // 8 for reg in LAYOUT)
    assert got[2] == (0xFFF0).to_bytes(8, "little").hex().encode()  # rip, 64 bits at reset


def test_a_16_mib_packet_in_small_pieces_is_read_whole():
    reader = PacketReader()
    body = b"X" * (16 << 20)
    data = raw_frame(body)
    events = []
    for start in range(0, len(data), 4096):
        reader.feed(data[start : start + 4096])
        events += list(reader.events())
    assert len(events) == 1 and len(events[0]) == len(body)


def test_frame_escapes_what_the_protocol_reserves():
    reader = PacketReader()
    reader.feed(frame("a#b$c}d*e"))
    assert list(reader.events()) == ["a#b$c}d*e"]


def test_fuzz_packet_reader_and_stub(stub):
    """Random bytes, random framing and random packets of every letter: no exception escapes."""
    gdb_stub, theirs = stub
    rng = random.Random(2323)
    alphabet = b"0123456789abcdefABCDEF,:;#$}*+-\x03xyzmMpPgGZzqQvHcs?"
    reader = PacketReader()
    packets = []
    for _ in range(FUZZ_CASES):
        body = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 24)))
        reader.feed(body if rng.random() < 0.2 else raw_frame(body))
        list(reader.events())
        letter = rng.choice(b"mMpPgZzqH?vX").to_bytes(1, "big")
        packets.append((letter + body).decode("latin-1"))
    for packet in packets:
        reply = gdb_stub.answer(packet)
        assert reply is None or isinstance(reply, str)
        theirs.setblocking(False)
        try:  # drain monitor output
            while theirs.recv(1 << 20):
                pass
        except BlockingIOError:
            pass
    assert gdb_stub.answer("?") == "S05"
