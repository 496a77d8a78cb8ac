"""A whole machine at one instruction (DESIGN.md principle 4): CPU state, the counters
virtual time comes from, the clock, every device's save(), the stage timeline and RAM."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vmm.machine import Machine


@dataclass
class MachineState:
    """A whole machine at one instruction (see Machine.save_state)."""

    cpu: object  # X86State
    instructions: int
    tsc_offset: int
    clock: dict
    devices: dict[str, dict]
    stages: list[dict]
    irq_level: bool
    serial_length: int
    ram: bytes | None
    entropy: int = 0  # RDRAND/RDSEED's generator


def capture(machine: Machine, with_ram: bool = True) -> MachineState:
    """Everything needed to continue exactly here: CPU, counters, clock, devices, RAM."""
    cpu = machine.cpu
    return MachineState(
        cpu=cpu.get_state(),
        instructions=cpu.instructions,
        tsc_offset=cpu.tsc_offset,
        clock=machine.clock.save(),
        devices={device.name: device.save() for device in machine.devices},
        stages=machine.stages.save(),
        irq_level=machine.intc.output,
        serial_length=len(machine.serial_transcript),
        ram=machine.memory.read(0, machine.memory.size) if with_ram else None,
        entropy=cpu.entropy_state,
    )


def restore(machine: Machine, state: MachineState) -> None:
    """Put ``machine`` back exactly where ``state`` was captured (RAM too, if it holds it)."""
    if state.ram is not None:
        machine.memory.write(0, state.ram)
    for device in machine.devices:
        if device.name in state.devices:  # saved before the device existed: it stays at power-on
            device.restore(state.devices[device.name])
    cpu = machine.cpu
    cpu.set_state(state.cpu)
    cpu.instructions = state.instructions
    cpu.tsc_offset = state.tsc_offset
    cpu.entropy_state = state.entropy
    machine.clock.restore(state.clock)
    machine.stages.restore(state.stages)
    cpu.set_irq_line(machine.intc.output)
    del machine.serial_transcript[state.serial_length :]
