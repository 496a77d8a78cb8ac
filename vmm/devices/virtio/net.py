"""virtio-net: an Ethernet NIC with one receive and one transmit queue.

Source: OASIS virtio 1.1, 5.1 (network device): configuration ``u8 mac[6]; le16 status``
(VIRTIO_NET_S_LINK_UP 1); features VIRTIO_NET_F_MAC (5), VIRTIO_NET_F_STATUS (16);
queues receiveq1 (0) and transmitq1 (1); every frame is preceded by the 12-byte
``virtio_net_hdr`` (with VERSION_1 it always has ``num_buffers``, 5.1.6).

Transmit: each chain's readable bytes past the header are one frame, handed to the
backend. Receive: frames from the backend wait in a bounded queue (``RX_BACKLOG``;
older frames are dropped first when it is full, as a NIC's FIFO overflows) until the
guest posts a buffer large enough for header and frame; a receive queue without buffers
never holds up transmit. No checksum or segmentation offloads are offered, so every
header the device writes is zero apart from ``num_buffers`` = 1.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Any

from vmm.devices.virtio.transport import VirtioDevice
from vmm.memory import GuestMemory
from vmm.net.backend import NetBackend

VIRTIO_ID_NET = 1
VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS = 5, 16
VIRTIO_NET_S_LINK_UP = 1
NET_HDR_SIZE = 12
RX_QUEUE, TX_QUEUE = 0, 1
RX_BACKLOG = 256
MAX_FRAME = 65535 + 14


def parse_mac(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


class VirtioNet(VirtioDevice):
    name = "virtio-net"
    device_type = VIRTIO_ID_NET
    queue_sizes = (256, 256)
    features = 1 << VIRTIO_NET_F_MAC | 1 << VIRTIO_NET_F_STATUS

    def __init__(self, memory: GuestMemory, mac: bytes, backend: NetBackend, name: str = "virtio-net") -> None:
        self.mac = bytes(mac)
        self.name = name
        self.backend = backend
        self.link_up = backend.link_up
        self.rx_backlog: deque[bytes] = deque(maxlen=RX_BACKLOG)
        self.stats = {"tx_frames": 0, "rx_frames": 0, "rx_dropped": 0}
        self._delivering = False
        super().__init__(memory)
        backend.attach(self.receive)

    def config_space(self) -> bytes:
        return self.mac + struct.pack("<H", VIRTIO_NET_S_LINK_UP if self.link_up else 0)

    def set_link(self, up: bool) -> None:
        if up != self.link_up:
            self.link_up = up
            self.config_changed()

    # ---- the backend side ----

    def receive(self, frame: bytes) -> None:
        """A frame for the guest (from the backend)."""
        if not self.link_up or len(frame) > MAX_FRAME:
            self.stats["rx_dropped"] += 1
            return
        if len(self.rx_backlog) == RX_BACKLOG:
            self.stats["rx_dropped"] += 1
        self.rx_backlog.append(bytes(frame))
        self._deliver()

    def _deliver(self) -> None:
        if self._delivering:
            return  # a frame looped back while transmitting: delivered after the transmit loop
        self._delivering = True
        try:
            while self.rx_backlog:
                chain = self.pop(RX_QUEUE)
                if chain is None:
                    return
                frame = self.rx_backlog.popleft()
                header = struct.pack("<BBHHHHH", 0, 0, 0, 0, 0, 0, 1)  # num_buffers = 1
                if chain.writable_length < NET_HDR_SIZE + len(frame):
                    self.stats["rx_dropped"] += 1
                    self.complete(RX_QUEUE, chain, 0)
                    continue
                written = chain.write(self.memory, header + frame)
                self.stats["rx_frames"] += 1
                self.complete(RX_QUEUE, chain, written)
        finally:
            self._delivering = False

    # ---- the guest side ----

    def process(self, queue_index: int) -> None:
        if queue_index == TX_QUEUE:
            self._delivering = True  # frames the backend answers with wait for the loop's end
            try:
                while (chain := self.pop(TX_QUEUE)) is not None:
                    length = chain.readable_length
                    if NET_HDR_SIZE < length <= NET_HDR_SIZE + MAX_FRAME:
                        frame = chain.read(self.memory, NET_HDR_SIZE)
                        self.stats["tx_frames"] += 1
                        if self.link_up:
                            self.backend.send(frame)
                    self.complete(TX_QUEUE, chain, 0)
            finally:
                self._delivering = False
        self._deliver()

    def device_reset(self) -> None:
        self.rx_backlog.clear()

    def save_device(self) -> dict[str, Any]:
        return {"link_up": self.link_up, "rx_backlog": list(self.rx_backlog), "stats": dict(self.stats)}

    def restore_device(self, state: dict[str, Any]) -> None:
        self.link_up = state["link_up"]
        self.rx_backlog = deque(state["rx_backlog"], maxlen=RX_BACKLOG)
        self.stats = dict(state["stats"])
