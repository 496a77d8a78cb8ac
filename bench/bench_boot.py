"""Boot cost, measured side by side in one run.

(a) POST: vmm's BIOS on vmm from reset to the first instruction at 0000:7C00
    (instructions and virtual time from the stage timeline, wall time of the run), beside
    QEMU's default machine and BIOS (``-M pc``, SeaBIOS) booting the same demo disk
    (firmware/build/hello.img) to its exit, as a whole process. QEMU with vmm's BIOS on
    isapc is printed too: its wall time is mostly QEMU's own start-up, which is what to
    subtract from the SeaBIOS figure to estimate SeaBIOS's POST alone; and a whole
    `vmm run` process to the same exit (Python start-up included), process beside process.
(b) Power-on to the toy OS's init banner (``init: toyos ready``) on vmm: wall time
    (machine construction included), instructions and virtual time.

Wall times are the best of a few rounds; instruction counts and virtual times are the same
in every round (vmm is deterministic).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from vmm.config import DiskConfig, MachineConfig, SerialConfig
from vmm.machine import Machine

ROOT = Path(__file__).resolve().parent.parent
BIOS = ROOT / "firmware" / "build" / "bios.bin"
HELLO = ROOT / "firmware" / "build" / "hello.img"
TOYOS = ROOT / "guests" / "build" / "toyos.img"
ROUNDS = 5
INIT_BANNER = b"init: toyos ready"
MAX_INSTRUCTIONS = 100_000_000
QEMU_COMMON = ["-m", "64", "-display", "none", "-serial", "none", "-no-reboot",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]  # fmt: skip


def _machine(image: Path, serial_out: Callable[[bytes], None] | None = None) -> Machine:
    config = MachineConfig(bios=BIOS, disks=[DiskConfig("ide0:0", image)], serial=SerialConfig("none"))
    return Machine(config, serial_out=serial_out)


def vmm_post(image: Path) -> tuple[float, int, int]:
    """Reset to 0x7C00 on vmm: (wall seconds of the run, instructions, virtual ns)."""
    machine = _machine(image)
    try:
        machine.on_stage = lambda t: machine.request_stop("at-boot-sector") if t.stage == "bootloader" else None
        start = time.perf_counter()
        result = machine.run(max_instructions=MAX_INSTRUCTIONS)
        wall = time.perf_counter() - start
        if result.reason != "at-boot-sector":
            raise RuntimeError(f"vmm did not reach 0x7C00: {result}")
        stage = machine.stages.timeline[-1]
        return wall, stage.instructions, stage.time_ns
    finally:
        machine.close()


def vmm_to_init_banner(image: Path) -> tuple[float, int, int]:
    """Power-on to the init banner on vmm: (wall seconds, instructions, virtual ns)."""
    start = time.perf_counter()
    holder: list[Machine] = []

    def watch(_byte: bytes) -> None:
        if holder[0].serial_transcript.endswith(INIT_BANNER):
            holder[0].request_stop("banner")

    machine = _machine(image, watch)
    holder.append(machine)
    try:
        result = machine.run(max_instructions=MAX_INSTRUCTIONS)
        wall = time.perf_counter() - start
        if result.reason != "banner":
            raise RuntimeError(f"the toy OS did not print {INIT_BANNER!r}: {result}")
        return wall, machine.cpu.instructions, machine.clock.now_ns()
    finally:
        machine.close()


def qemu_to_exit(qemu: str, image: Path, machine_args: list[str]) -> float:
    """Wall seconds of a QEMU process that boots ``image`` until the guest's exit port."""
    start = time.perf_counter()
    result = subprocess.run([qemu, *machine_args, *QEMU_COMMON, "-drive", f"file={image},format=raw,if=ide"],
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=60)  # fmt: skip
    wall = time.perf_counter() - start
    if result.returncode != 1:
        raise RuntimeError(f"QEMU exited with {result.returncode}: {result.stderr.decode(errors='replace')}")
    return wall


def vmm_process_to_exit(image: Path) -> float:
    """Wall seconds of a `vmm run` process (Python start-up included) to the guest's exit."""
    vmm = Path(sys.executable).with_name("vmm")
    start = time.perf_counter()
    result = subprocess.run([str(vmm), "run", "--serial", "none", "--bios", str(BIOS), str(image)],
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=60)  # fmt: skip
    wall = time.perf_counter() - start
    if result.returncode != 1:
        raise RuntimeError(f"vmm exited with {result.returncode}: {result.stderr.decode(errors='replace')}")
    return wall


def main() -> None:
    for needed in (BIOS, HELLO, TOYOS):
        if not needed.exists():
            print(f"   skipped: {needed.relative_to(ROOT)} is missing (run make)")
            return
    wall, insns, ns = min(vmm_post(HELLO) for _ in range(ROUNDS))
    print(f"   vmm BIOS, reset to 0x7C00:   {insns:>10,} insns  {ns / 1e6:8.3f} ms virtual  {wall * 1e3:8.1f} ms wall")
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        print("   QEMU comparison skipped: qemu-system-x86_64 is not installed")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            image = Path(tmp, HELLO.name)
            shutil.copyfile(HELLO, image)  # QEMU locks its disk: keep the build's copy free
            seabios = min(qemu_to_exit(qemu, image, ["-M", "pc"]) for _ in range(ROUNDS))
            ours = min(
                qemu_to_exit(qemu, image, ["-M", "isapc", "-cpu", "qemu64,-apic", "-bios", str(BIOS)])
                for _ in range(ROUNDS)
            )
        print(f"   QEMU -M pc (SeaBIOS), hello.img to exit, whole process:  {seabios * 1e3:8.1f} ms wall")
        print(f"   QEMU -M isapc (vmm BIOS), hello.img to exit, whole process: {ours * 1e3:5.1f} ms wall")
        process = min(vmm_process_to_exit(image) for _ in range(3))
        print(f"   vmm run (vmm BIOS), hello.img to exit, whole process:      {process * 1e3:8.1f} ms wall")
        print(
            f"   ratio vmm POST (in process) / QEMU+SeaBIOS process: {wall / seabios:.2f}; "
            f"process / process: {process / seabios:.2f}"
        )
    wall, insns, ns = min(vmm_to_init_banner(TOYOS) for _ in range(3))
    print(f"   vmm toy OS, power-on to init: {insns:>10,} insns  {ns / 1e6:8.3f} ms virtual  {wall * 1e3:8.1f} ms wall"
          f"  ({'under' if wall < 0.5 else 'OVER'} the 0.5 s aim)")  # fmt: skip


if __name__ == "__main__":
    main()
