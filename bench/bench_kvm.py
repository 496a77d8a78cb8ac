"""The KVM backend beside Unicorn: guest instructions per second of both on the same
CPU-bound loop (counted by the guest itself: KVM has no retired-instruction counter), and
KVM exits per second for an I/O-heavy guest (a loop of `out`)."""

from __future__ import annotations

import time

from vmm.cpu.base import PhysRegion
from vmm.cpu.select import calibrate
from vmm.errors import BackendUnavailable
from vmm.memory import GuestMemory

IO_LOOP_ITERATIONS = 20_000
# F000:0000: mov cx, N; 1: out 0x80, al; dec cx; jnz 1b; hlt — reset vector jumps there.
_IO_LOOP = bytes.fromhex("b9") + IO_LOOP_ITERATIONS.to_bytes(2, "little") + bytes.fromhex("e6804975fbf4")


class _CountingPlatform:
    def __init__(self) -> None:
        self.writes = 0

    def io_read(self, port: int, size: int) -> int:
        return 0xFF

    def io_write(self, port: int, size: int, value: int) -> None:
        self.writes += 1

    def mmio_read(self, addr: int, size: int) -> int:
        return 0

    def mmio_write(self, addr: int, size: int, value: int) -> None:
        pass

    def interrupt_acknowledge(self) -> int:
        return 8


def kvm_exits_per_second() -> tuple[float, int]:
    from vmm.cpu.kvm import KvmCpu

    rom = bytearray(b"\xf4" * 0x10000)
    rom[0 : len(_IO_LOOP)] = _IO_LOOP
    rom[0xFFF0:0xFFF5] = bytes.fromhex("ea000000f0")
    memory = GuestMemory(1 << 20)
    platform = _CountingPlatform()
    regions = [PhysRegion(0, 0xF0000, "ram", 0), PhysRegion(0xF0000, 0x10000, "rom", data=bytes(rom)),
               PhysRegion(0xFFFF0000, 0x10000, "rom", data=bytes(rom))]  # fmt: skip
    cpu = KvmCpu(memory, platform, regions)
    try:
        start = time.perf_counter()
        while cpu.run(10**12).reason.value != "halt":
            pass
        elapsed = time.perf_counter() - start
        return platform.writes / elapsed, platform.writes
    finally:
        cpu.close()
        memory.close()


def main() -> None:
    calibration = calibrate()
    print(f"register loop: Unicorn {calibration.unicorn_ips / 1e6:,.1f} M instructions/s", end="")
    if calibration.kvm_ips is None:
        print(f"; KVM not usable: {calibration.kvm_problem}")
        return
    print(f", KVM {calibration.kvm_ips / 1e6:,.2f} M instructions/s, ratio KVM/Unicorn "
          f"{calibration.kvm_ips / calibration.unicorn_ips:.4f}")  # fmt: skip
    print(f"   {calibration.explain()}")
    try:
        rate, exits = kvm_exits_per_second()
    except BackendUnavailable as exc:
        print(f"I/O loop: KVM not usable: {exc}")
        return
    print(f"I/O loop on KVM: {exits:,} port writes, {rate:,.0f} exits/s")


if __name__ == "__main__":
    main()
