"""virtio-balloon: the host asks the guest to give pages back, and releases them.

Source: OASIS virtio 1.1, 5.5 (traditional memory balloon): configuration ``le32
num_pages`` (the device's target, in 4 KiB pages) and ``le32 actual`` (written by the
driver); queues inflateq (0) and deflateq (1), each buffer an array of ``le32`` page
frame numbers (page = PFN * 4096).

Pages the guest puts in the balloon are released on the host with madvise(DONTNEED)
on the RAM mapping (vmm.memory.GuestMemory.discard): the host gets the memory back and
the page reads as zeros when the guest touches it again. Deflated pages need nothing:
they fault back in as zero pages. PFNs outside guest RAM are ignored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from vmm.devices.virtio.transport import VirtioDevice
from vmm.errors import ConfigError
from vmm.memory import GuestMemory

VIRTIO_ID_BALLOON = 5
PAGE = 4096
INFLATE_QUEUE, DEFLATE_QUEUE = 0, 1
MAX_PFNS_PER_REQUEST = 1 << 16  # bounds the work per chain


@dataclass(frozen=True)
class BalloonStatus:
    """What the balloon holds, for a monitor's ``balloon`` command (MiB, rounded down)."""

    target_mib: int  # what the host asked for (num_pages)
    actual_mib: int  # what the guest's driver says it holds (actual)
    released_mib: int  # pages the host released with madvise since power-on
    ram_mib: int

    def __str__(self) -> str:
        return (f"balloon: target {self.target_mib} MiB, guest holds {self.actual_mib} MiB, "
                f"{self.released_mib} MiB released to the host (of {self.ram_mib} MiB RAM)")  # fmt: skip


class VirtioBalloon(VirtioDevice):
    name = "virtio-balloon"
    device_type = VIRTIO_ID_BALLOON
    queue_sizes = (128, 128)

    def __init__(self, memory: GuestMemory) -> None:
        self.num_pages = 0
        self.actual = 0
        self.released_pages = 0
        super().__init__(memory)

    def config_space(self) -> bytes:
        return struct.pack("<II", self.num_pages, self.actual)

    def write_config(self, offset: int, data: bytes) -> None:
        image = bytearray(self.config_space())
        end = min(offset + len(data), len(image))
        image[offset:end] = data[: max(0, end - offset)]
        self.actual = struct.unpack_from("<I", image, 4)[0]  # only `actual` is the driver's

    def set_target(self, mib: int) -> BalloonStatus:
        """Ask the guest to hold ``mib`` MiB in the balloon (0: give everything back).

        Safe to call at any time from the machine's thread (between run slices, from a
        monitor or control channel): it updates ``num_pages`` and raises a configuration
        change interrupt (ISR bit 1 on INTx) when the target changes; the guest's driver
        then inflates or deflates at its own pace. Raises ConfigError for a target below 0
        or above guest RAM. Returns the status right after the request."""
        ram_mib = self.memory.size >> 20
        if not isinstance(mib, int) or not 0 <= mib <= ram_mib:
            raise ConfigError(f"balloon: target {mib!r} MiB is not between 0 and the guest's {ram_mib} MiB")
        pages = mib * (1 << 20) // PAGE
        if pages != self.num_pages:
            self.num_pages = pages
            self.config_changed()
        return self.report()

    def report(self) -> BalloonStatus:
        to_mib = PAGE / (1 << 20)
        return BalloonStatus(int(self.num_pages * to_mib), int(self.actual * to_mib),
                             int(self.released_pages * to_mib), self.memory.size >> 20)  # fmt: skip

    def process(self, queue_index: int) -> None:
        while (chain := self.pop(queue_index)) is not None:
            if queue_index == INFLATE_QUEUE:
                count = min(chain.readable_length // 4, MAX_PFNS_PER_REQUEST)
                pfns = struct.unpack(f"<{count}I", chain.read(self.memory, 0, 4 * count))
                self._release(pfns)
            self.complete(queue_index, chain, 0)

    def _release(self, pfns: tuple[int, ...]) -> None:
        limit = self.memory.size // PAGE
        run_start = run_length = 0
        for pfn in sorted(set(pfns)):
            if pfn >= limit:
                break
            if run_length and pfn == run_start + run_length:
                run_length += 1
                continue
            if run_length:
                self.memory.discard(run_start * PAGE, run_length * PAGE)
            run_start, run_length = pfn, 1
        if run_length:
            self.memory.discard(run_start * PAGE, run_length * PAGE)
        self.released_pages += sum(1 for pfn in set(pfns) if pfn < limit)

    def device_reset(self) -> None:
        self.actual = 0

    def save_device(self) -> dict[str, Any]:
        return {"num_pages": self.num_pages, "actual": self.actual, "released_pages": self.released_pages}

    def restore_device(self, state: dict[str, Any]) -> None:
        self.num_pages, self.actual, self.released_pages = state["num_pages"], state["actual"], state["released_pages"]
