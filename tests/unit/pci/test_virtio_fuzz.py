"""Fuzzing every virtqueue of every virtio device with random descriptor tables and rings.

Seeded (the same requests on every run), bounded (a fixed number of requests). Each
round writes random descriptors — addresses inside, across and outside RAM, random
lengths, flags, ``next`` indices, loops — and a random available index, then notifies.
Whatever the guest wrote: no host exception, no write outside guest RAM (GuestMemory
raises on one), and after a reset the device serves a well-formed request again.
"""

from __future__ import annotations

import random
import struct

import pytest

from tests.unit.pci.driver import Driver
from vmm.devices.virtio.balloon import VirtioBalloon
from vmm.devices.virtio.blk import VirtioBlock
from vmm.devices.virtio.net import VirtioNet
from vmm.devices.virtio.rng import VirtioRng
from vmm.devices.virtio.transport import DEVICE_NEEDS_RESET
from vmm.disk.open import open_disk
from vmm.memory import GuestMemory
from vmm.net.backend import LoopbackBackend

MIB = 1 << 20
RAM = 4 * MIB
QUEUE_SIZE = 16
REQUESTS_PER_QUEUE = 17_000  # six queues: over 100 000 requests in all
ROUNDS_CHAINS = 8  # chains made available per notification


def plausible_table(rng: random.Random) -> bytes:
    """Chains a driver might build (short, in RAM, readable then writable), with random contents."""
    out = []
    writable = False
    for i in range(QUEUE_SIZE):
        addr = rng.randrange(0x300000, RAM - 0x2000)
        length = rng.choice((1, 12, 16, 20, 60, 72, 512, 1024, 1526, 4096, rng.randrange(0, 0x2000)))
        writable = writable or rng.random() < 0.4
        more = rng.random() < 0.6 and i + 1 < QUEUE_SIZE
        flags = (2 if writable else 0) | (1 if more else 0)
        if not more:
            writable = False
        out.append(struct.pack("<QIHH", addr, length, flags, i + 1))
    if rng.random() < 0.3:  # one corrupted descriptor
        out[rng.randrange(QUEUE_SIZE)] = random_descriptor(rng)
    return b"".join(out)


def random_descriptor(rng: random.Random) -> bytes:
    choice = rng.random()
    if choice < 0.6:  # a plausible buffer inside RAM
        addr = rng.randrange(0x300000, RAM - 0x2000)
        length = rng.choice((0, 1, 12, 16, 17, 512, 513, 1024, 1526, 4096, rng.randrange(0, 0x2000)))
    elif choice < 0.8:  # crossing the end of RAM, or huge
        addr = rng.choice((RAM - rng.randrange(0, 64), rng.randrange(0, RAM), 0xFFFFFFFFFFFFF000))
        length = rng.choice((0xFFFFFFFF, 0x80000000, RAM, rng.randrange(1, 0x10000)))
    else:  # anything
        addr, length = rng.getrandbits(64), rng.getrandbits(32)
    flags = rng.choice((0, 1, 2, 3, 3, 1, 2, 4, 5, rng.getrandbits(16)))
    following = rng.choice((rng.randrange(QUEUE_SIZE), rng.randrange(QUEUE_SIZE), rng.getrandbits(16)))
    return struct.pack("<QIHH", addr, length, flags, following)


def sane_chain_request(kind: str, queue: int) -> tuple[list[bytes], list[int]]:
    if kind == "blk":
        return [struct.pack("<IIQ", 0, 0, 0)], [512, 1]
    if kind == "net":
        return ([], [1526]) if queue == 0 else ([bytes(12) + bytes(60)], [])
    if kind == "rng":
        return [], [32]
    return [struct.pack("<I", 0x3FF)], []


QUEUES = [("blk", 0), ("net", 0), ("net", 1), ("rng", 0), ("balloon", 0), ("balloon", 1)]


@pytest.mark.parametrize("kind,queue", QUEUES)
def test_random_descriptor_tables_never_hurt_the_host(tmp_path, kind, queue):
    memory = GuestMemory(RAM)
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(64 * 1024))
    disk = open_disk(path)
    device = {
        "blk": lambda: VirtioBlock(memory, disk),
        "net": lambda: VirtioNet(memory, bytes(6), LoopbackBackend()),
        "rng": lambda: VirtioRng(memory),
        "balloon": lambda: VirtioBalloon(memory),
    }[kind]()
    drv = Driver(device, queue_size=QUEUE_SIZE)
    rng = random.Random(f"{kind}-{queue}")
    drv.bring_up()
    desc, avail, _used = drv.rings(queue)
    requests = resets = taken = 0
    while requests < REQUESTS_PER_QUEUE:
        hostile = rng.random() < 0.2
        if hostile:
            table = b"".join(random_descriptor(rng) for _ in range(QUEUE_SIZE))
        else:
            table = plausible_table(rng)
        memory.write(desc, table)
        start = device.queues[queue].last_avail
        count = rng.choice((1, 2, ROUNDS_CHAINS, QUEUE_SIZE))
        if hostile:
            count = rng.choice((count, rng.randrange(0, 0x10000)))
        ring = b"".join(struct.pack("<H", rng.randrange(QUEUE_SIZE) if not hostile or rng.random() < 0.9
                                    else rng.getrandbits(16)) for _ in range(QUEUE_SIZE))  # fmt: skip
        memory.write(avail + 4, ring)
        memory.write(avail, struct.pack("<HH", rng.getrandbits(1), (start + count) & 0xFFFF))
        drv.notify(queue)
        if queue == 0 and kind == "net":  # frames from the backend arrive at random moments
            for _ in range(rng.randrange(0, QUEUE_SIZE + 2)):
                device.receive(bytes(rng.randrange(0, 2000)))
        requests += min(count, QUEUE_SIZE)
        taken += (device.queues[queue].last_avail - start) & 0xFFFF
        if device.device_status & DEVICE_NEEDS_RESET:
            resets += 1
            drv.bring_up()  # status 0, then the whole initialization again
            readable, writable = sane_chain_request(kind, queue)
            drv.submit(queue, readable, writable)
            if kind == "net" and queue == 0:
                device.receive(bytes(60))
            assert drv.used(queue), f"{kind} queue {queue} served nothing after a reset"
            assert not device.device_status & DEVICE_NEEDS_RESET
    assert resets > 10  # the fuzzer did reach the error paths
    assert taken > REQUESTS_PER_QUEUE // 4  # and the device parsed a good share of the chains
    disk.close()
    memory.close()
