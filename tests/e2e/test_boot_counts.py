"""The speed work must not move the guest: the toy OS boot to its shell prompt retires the
same instructions, in the same virtual time, with the same serial bytes, whether the ATA
data port is served natively a block at a time or word by word through Python, and
whether a PIT period is one timer event or two. The count itself is pinned: it was the
same on the PyPI wheel's unpatched libunicorn. (A change to the BIOS or the toy OS moves
it legitimately: update PROMPT_INSTRUCTIONS with the new figure and say why.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from vmm.config import DiskConfig, MachineConfig, SerialConfig
from vmm.machine import Machine

ROOT = Path(__file__).resolve().parents[2]
BIOS = ROOT / "firmware" / "build" / "bios.bin"
TOYOS = ROOT / "guests" / "build" / "toyos.img"
PROMPT = b"toyos$ "
# Power-on to the first shell prompt, vmm's BIOS (+PCI probe, team ID, eth0 lines; kernel built
# with -g: stage 2 reads a bigger ELF; +10: the MP table check at POST; +1,324: the teletype's
# graphics-mode check, 4 instructions a character; -3: libunicorn patch 0005 stops right
# after the OUT whose byte completes the prompt, where the stop used to come after the next
# memory access with the rest of the block counted: the same instructions ran, the count
# of the stop is now exact).
PROMPT_INSTRUCTIONS = 2_506_340


def boot_to_prompt(tmp_path: Path, fast_paths: bool) -> tuple[int, int, bytes]:
    image = tmp_path / f"toyos-{fast_paths}.img"
    image.write_bytes(TOYOS.read_bytes())
    holder: list[Machine] = []

    def watch(_byte: bytes) -> None:
        if holder[0].serial_transcript.endswith(PROMPT):
            holder[0].request_stop("prompt")

    config = MachineConfig(bios=BIOS, disks=[DiskConfig("ide0:0", image)], serial=SerialConfig("none"))
    machine = Machine(config, serial_out=watch)
    holder.append(machine)
    try:
        if not fast_paths:
            machine.ata.attach_data_window(None)  # every data-port word through Python
            machine.pit.irq0_edge_only = None  # both edges of OUT0 as timer events
            machine.pit.reset()
        result = machine.run(max_instructions=50_000_000)
        assert result.reason == "prompt", result
        return machine.cpu.instructions, machine.clock.now_ns(), bytes(machine.serial_transcript)
    finally:
        machine.close()


@pytest.fixture(scope="module")
def boots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("boots")
    return boot_to_prompt(folder, True), boot_to_prompt(folder, False)


def test_fast_paths_leave_the_boot_unchanged(boots):
    fast, slow = boots
    assert fast == slow


def test_toy_os_boot_count_is_pinned(boots):
    instructions, ns, _serial = boots[0]
    assert (instructions, ns) == (PROMPT_INSTRUCTIONS, PROMPT_INSTRUCTIONS * 10)
