"""Host memory given back by the virtio balloon: the vmm process's RSS before and after the
Debian guest (`make linux-guest`) inflates its balloon by 32 MiB on the pc machine.

    python -m bench.bench_balloon

Boots the syslinux disk with tests/e2e/linux_virtio_init.sh as /init (the guest first makes
48 MiB of its memory resident, frees it, then waits), asks for 32 MiB when the guest says it
is ready, and prints the RSS of this process (VmRSS) at both points. Not a timing: a figure
of host memory, measured in one run.
"""

from __future__ import annotations

import sys

from tests.e2e import test_linux_virtio as linux


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def main() -> int:
    import tempfile
    from pathlib import Path

    from vmm.config import DiskConfig, MachineConfig, NicConfig, SerialConfig
    from vmm.machine import Machine

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        images = linux.prepare_images(work)
        raw = work / "vd.img"
        linux.pattern_disk(raw)
        config = MachineConfig(machine="pc", memory_mb=128, serial=SerialConfig("none"), balloon=True,
                               disks=[DiskConfig("ide0:0", images["vmm"]), DiskConfig("virtio0", raw)],
                               nics=[NicConfig("ethernet0", "loopback", linux.MAC)])  # fmt: skip
        machine = Machine(config)
        before: list[int] = []

        def ask() -> None:
            if not before and b"balloon ready" in machine.serial_transcript:
                before.append(rss_kib())
                machine.pci.balloon.set_target(32)

        machine.run(max_instructions=linux.MAX_INSTRUCTIONS, poll=ask)
        after = rss_kib()
        released = machine.pci.balloon.released_pages
        machine.close()
    if not before:
        print("bench_balloon: the guest never said it was ready", file=sys.stderr)
        return 1
    print(f"balloon: asked 32 MiB, guest gave {released * 4} KiB; vmm RSS {before[0]} KiB -> {after} KiB "
          f"({(before[0] - after) / 1024:.1f} MiB released)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
