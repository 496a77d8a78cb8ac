"""virtio-rng (entropy source): fills each device-writable buffer from a seeded generator.

Source: OASIS virtio 1.1, 5.4 (entropy device): one request queue, no features, no
configuration; the device writes random bytes into the buffers and reports how many.

The bytes come from SHAKE-256 over the machine's seed (``rng_seed``, the one RDRAND's
generator starts from; this is a stream of its own) and a request counter, so the same
seed gives the same bytes at the same request on every run (DESIGN.md principle 3) and
the state to save is two numbers. At most ``MAX_FILL`` bytes per request (5.4.6.1 lets
the device write fewer than asked).
"""

from __future__ import annotations

import hashlib
from typing import Any

from vmm.devices.virtio.transport import VirtioDevice
from vmm.memory import GuestMemory

VIRTIO_ID_ENTROPY = 4
MAX_FILL = 64 * 1024
DEFAULT_SEED = 0  # as MachineConfig.rng_seed


class SeededStream:
    """Deterministic bytes: SHAKE-256(seed, counter) per draw."""

    def __init__(self, seed: int = DEFAULT_SEED) -> None:
        self.seed = seed
        self.counter = 0

    def draw(self, length: int) -> bytes:
        material = self.seed.to_bytes(16, "little", signed=False) + self.counter.to_bytes(8, "little")
        self.counter += 1
        return hashlib.shake_256(material).digest(length) if length else b""


class VirtioRng(VirtioDevice):
    name = "virtio-rng"
    device_type = VIRTIO_ID_ENTROPY
    queue_sizes = (64,)

    def __init__(self, memory: GuestMemory, seed: int = DEFAULT_SEED) -> None:
        self.stream = SeededStream(seed)
        self.seed = seed
        super().__init__(memory)

    def process(self, queue_index: int) -> None:
        while (chain := self.pop(queue_index)) is not None:
            length = min(chain.writable_length, MAX_FILL)
            written = chain.write(self.memory, self.stream.draw(length))
            self.complete(queue_index, chain, written)

    def device_reset(self) -> None:
        pass  # the stream goes on: a guest reset does not replay old randomness

    def save_device(self) -> dict[str, Any]:
        return {"seed": self.stream.seed, "counter": self.stream.counter}

    def restore_device(self, state: dict[str, Any]) -> None:
        self.stream.seed, self.stream.counter = state["seed"], state["counter"]
