"""The BIOS test programs on the KVM backend print exactly what they print on Unicorn
and under QEMU (tests/bios/expected/*.txt): the BIOS uses only PC hardware, through
ports and memory, so the backend underneath does not show.

The KVM of vmm's development and CI machines is nested and software-assisted (slow on
16-bit code), so each program gets a wall-clock bound rather than an instruction budget:
KVM has no instruction counter (vmm/cpu/kvm.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bios.build import build_boot_image, program_names
from tests.bios.test_bios_qemu import SERIAL_INPUT
from tests.bios.test_bios_vmm import BIOS, EXIT_STATUS, EXPECTED, READY_FOR_INPUT, as_text
from tests.conftest import require_file, require_kvm
from vmm.config import DiskConfig, MachineConfig, SerialConfig
from vmm.machine import Machine

WALL_SECONDS = 60


@pytest.mark.kvm
@pytest.mark.parametrize("name", program_names())
def test_bios_program_on_kvm(name: str, tmp_path: Path) -> None:
    require_kvm()
    from vmm.cpu.select import cpu_factory_for

    image = build_boot_image(name, tmp_path)
    config = MachineConfig(bios=require_file(BIOS), disks=[DiskConfig("ide0:0", image)], serial=SerialConfig("none"))
    machine = Machine(config, cpu_factory=cpu_factory_for("kvm"))
    pending = [SERIAL_INPUT[name]] if name in SERIAL_INPUT else []
    ready = READY_FOR_INPUT.get(name)

    def type_when_ready() -> None:
        if pending and (ready is None or ready in machine.serial_transcript):
            machine.send(pending.pop())

    try:
        result = machine.run(timeout=WALL_SECONDS, poll=type_when_ready)
        serial = bytes(machine.serial_transcript)
    finally:
        machine.close()
    assert as_text(serial) == (EXPECTED / f"{name}.txt").read_text(encoding="latin-1")
    assert (result.reason, result.status) == ("exit-port", EXIT_STATUS)
