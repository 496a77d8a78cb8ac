"""`vmm lab`: several machines and the switches between them, in lockstep on one virtual clock.

The lockstep rule: the lab's time advances in slices of ``slice_ns``. In each slice every
VM, in the file's order, first receives the frames the switches gave it at the end of the
previous slice, then runs until its own virtual clock reaches the slice's end (an idle
guest's clock jumps to its next timer or to the slice end, whichever comes first). Then
every frame the VMs sent during the slice goes through its switch, VM by VM in order and
frame by frame as sent, with the slice's end as the switch's time. Nothing depends on the
host's speed or scheduling, so a lab run gives the same serial bytes, the same pcap files
and the same instruction counts every time.

Its cost: a frame takes one slice to cross a switch (1 ms by default: a ping round trip is
at least 2 slices), and each slice is a round of Python over every VM, so slices much
smaller than the guests' timer period slow the lab down. Host network backends (`--nic
user`, a socket `vmm switch`) are not allowed in a lab: their timing comes from outside.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vmm.cpu.state import RFLAGS_IF
from vmm.errors import ConfigError
from vmm.exits import MachineExit, Stops
from vmm.lab.spec import LabSpec, LabVm
from vmm.net.backend import NetBackend, PcapTap
from vmm.net.pcap import PcapWriter
from vmm.net.switch import Switch

ENDED = ("exit-port", "halted", "triple-fault", "error")


class LabPort(NetBackend):
    """A NIC's cable to an in-process switch: what the guest sends waits in ``outbox`` for
    the slice's end; what the switch sends waits in ``inbox`` for the next slice."""

    kind = "lab"

    def __init__(self) -> None:
        super().__init__()
        self.outbox: list[bytes] = []
        self.inbox: list[bytes] = []
        self.port_number = 0

    def send(self, frame: bytes) -> None:
        self.outbox.append(bytes(frame))

    def to_guest(self, frame: bytes) -> None:
        self.inbox.append(frame)

    def deliver_inbox(self) -> None:
        frames, self.inbox = self.inbox, []
        for frame in frames:
            self.deliver(frame)


class LabMachine:
    """One VM of the lab: its machine, its cables, and how its run ended (None: running)."""

    def __init__(self, vm: LabVm, machine, ports: list[tuple[str, LabPort]]) -> None:
        self.name = vm.name
        self.machine = machine
        self.ports = ports
        self.exit: MachineExit | None = None

    def run_until(self, end_ns: int) -> None:
        machine = self.machine
        clock = machine.clock
        while self.exit is None and clock.now_ns() < end_ns:
            budget = max(1, clock.ns_to_insns(end_ns - clock.now_ns()))
            result = machine.run(max_instructions=budget, stops=Stops(idle=True))
            if result.reason == "idle":
                self._idle(end_ns)
            elif result.reason in ENDED:
                self.exit = result
            elif result.reason != "limit":
                self.exit = result

    def _idle(self, end_ns: int) -> None:
        """HLT with interrupts on: virtual time runs to the next timer or the slice's end."""
        machine = self.machine
        machine.idle_pending = False
        if machine.pic.output and machine.cpu.get_state().rflags & RFLAGS_IF:
            return
        now = machine.clock.now_ns()
        deadline = machine.clock.next_deadline_ns()
        target = end_ns if deadline is None else min(deadline, end_ns)
        if target > now:
            machine.clock.idle(target - now)
            machine.cpu.advance_tsc(target - now)
        machine.clock.run_due()


class Lab:
    def __init__(self, spec: LabSpec, out_dir: Path | None = None,
                 make_machine: Callable | None = None) -> None:  # fmt: skip
        from vmm.machine import Machine

        self.spec = spec
        self.time_ns = 0
        self.out_dir = out_dir
        self.captures: list = []
        self.switches = {name: Switch(self.now_ns, ageing, name) for name, ageing in spec.switches.items()}
        self.vms: list[LabMachine] = []
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        try:
            for vm in spec.vms:
                machine = (make_machine or Machine)(vm.config)
                ports = []
                for nic_spec, device in zip(vm.nics, machine.pci.nics, strict=True):
                    cable = LabPort()
                    backend: NetBackend = cable
                    if nic_spec.pcap and out_dir is not None:
                        backend = PcapTap(cable, out_dir / f"{vm.name}-{device.name}.pcap", machine.clock.now_ns)
                        self.captures.append(backend)
                    device.backend = backend
                    backend.attach(device.receive)
                    switch = self.switches[nic_spec.switch]
                    port = switch.add_port(f"{vm.name}/{device.name}", nic_spec.mode, cable.to_guest)
                    cable.port_number = port.number
                    if out_dir is not None:
                        writer = PcapWriter(out_dir / f"{nic_spec.switch}-port{port.number}-{vm.name}.pcap",
                                            self.now_ns)  # fmt: skip
                        port.tap = writer.write
                        self.captures.append(writer)
                    ports.append((nic_spec.switch, cable))
                self.vms.append(LabMachine(vm, machine, ports))
        except BaseException:
            self.close()
            raise

    def now_ns(self) -> int:
        return self.time_ns

    def vm(self, name: str) -> LabMachine:
        for vm in self.vms:
            if vm.name == name:
                return vm
        raise ConfigError(f"no VM named {name!r} in the lab")

    @property
    def running(self) -> bool:
        return any(vm.exit is None for vm in self.vms)

    def step(self) -> None:
        """One lockstep slice (see the module's docstring)."""
        end = self.time_ns + self.spec.slice_ns
        for vm in self.vms:
            if vm.exit is not None:
                continue
            for _switch, cable in vm.ports:
                cable.deliver_inbox()
            vm.run_until(end)
        self.time_ns = end
        for vm in self.vms:
            for switch_name, cable in vm.ports:
                frames, cable.outbox = cable.outbox, []
                if vm.exit is not None:
                    continue  # a VM that ended has pulled its cables
                switch = self.switches[switch_name]
                for frame in frames:
                    switch.receive(cable.port_number, frame)
        for vm in self.vms:
            if vm.exit is not None:
                for switch_name, cable in vm.ports:
                    self.switches[switch_name].remove_port(cable.port_number)
                    cable.inbox.clear()

    def run(self, until: Callable[[], bool] | None = None, end_ns: int | None = None) -> bool:
        """Slices until ``until()`` holds (True), every VM ended, or ``end_ns`` (False)."""
        end_ns = self.spec.run_ns if end_ns is None else end_ns
        while True:
            if until is not None and until():
                return True
            if not self.running or self.time_ns >= end_ns:
                return until is None and not self.running
            self.step()

    def close(self) -> None:
        for capture in self.captures:
            capture.close()
        for vm in self.vms:
            vm.machine.close()
