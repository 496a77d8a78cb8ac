"""Disk throughput: a monolithicSparse VMDK beside a raw file in the same directory, measured
in the same run, as ratios (vmdk/raw) of 4 KiB sequential and random reads and writes.

Both go through vmm's BlockDevice (RawDisk, VmdkDisk), so the ratio is the cost of the VMDK
layer: grain lookup, grain allocation on first write, GT/RGT updates. Writes include the
final flush (fsync).
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable

from vmm.disk.base import BlockDevice
from vmm.disk.open import open_disk
from vmm.disk.raw import create_raw
from vmm.disk.vmdk.create import create_vmdk

DISK_BYTES = 128 << 20
BLOCK = 4096
SECTORS = BLOCK // 512
RANDOM_OPS = 16000
ROUNDS = 3  # best of, raw and vmdk alternating


def _timed(disk: BlockDevice, work: Callable[[BlockDevice], int]) -> float:
    """MB/s of ``work`` (which returns the bytes it moved)."""
    start = time.perf_counter()
    moved = work(disk)
    disk.flush()
    return moved / (time.perf_counter() - start) / 1e6


def _seq_write(disk: BlockDevice) -> int:
    data = os.urandom(BLOCK)
    for lba in range(0, disk.capacity, SECTORS):
        disk.write(lba, data)
    return disk.capacity * 512


def _seq_read(disk: BlockDevice) -> int:
    for lba in range(0, disk.capacity, SECTORS):
        disk.read(lba, SECTORS)
    return disk.capacity * 512


def _random_offsets(capacity: int) -> list[int]:
    rng = random.Random(4)
    return [rng.randrange(capacity // SECTORS) * SECTORS for _ in range(RANDOM_OPS)]


def _random_write(disk: BlockDevice) -> int:
    data = os.urandom(BLOCK)
    for lba in _random_offsets(disk.capacity):
        disk.write(lba, data)
    return RANDOM_OPS * BLOCK


def _random_read(disk: BlockDevice) -> int:
    for lba in _random_offsets(disk.capacity):
        disk.read(lba, SECTORS)
    return RANDOM_OPS * BLOCK


def measure(directory: str) -> list[tuple[str, float, float]]:
    raw_path, vmdk_path = os.path.join(directory, "bench.raw"), os.path.join(directory, "bench.vmdk")
    rows = []
    # Random writes first, on fresh disks: for the VMDK they allocate grains (the expensive case).
    for label, work, fresh in (
        ("random write (allocating)", _random_write, True),
        ("sequential write", _seq_write, False),
        ("random write (allocated)", _random_write, False),
        ("sequential read", _seq_read, False),
        ("random read", _random_read, False),
    ):
        if fresh:
            for p in (raw_path, vmdk_path):
                if os.path.exists(p):
                    os.unlink(p)
            create_raw(raw_path, DISK_BYTES // 512)
            create_vmdk(vmdk_path, DISK_BYTES // 512)
        raw_rate = vmdk_rate = 0.0
        for round_number in range(ROUNDS):
            if fresh and round_number:
                break  # allocation happens once; later rounds would overwrite allocated grains
            with open_disk(raw_path) as raw:
                raw_rate = max(raw_rate, _timed(raw, work))
            with open_disk(vmdk_path) as vmdk:
                vmdk_rate = max(vmdk_rate, _timed(vmdk, work))
        rows.append((label, raw_rate, vmdk_rate))
    return rows


def main() -> None:
    directory = tempfile.mkdtemp(prefix="vmm-bench-disk-")
    try:
        rows = measure(directory)
    finally:
        shutil.rmtree(directory)
    print(f"   {DISK_BYTES >> 20} MiB disks, {BLOCK // 1024} KiB blocks, {RANDOM_OPS} random ops, best of {ROUNDS}")
    print(f"   {'operation':28} {'raw MB/s':>10} {'vmdk MB/s':>10} {'vmdk/raw':>9}")
    for label, raw_rate, vmdk_rate in rows:
        print(f"   {label:28} {raw_rate:10.1f} {vmdk_rate:10.1f} {vmdk_rate / raw_rate:9.2f}")


if __name__ == "__main__":
    main()
