"""Machine: the wiring board. Owns guest RAM, the buses, the clock, the devices and a CPU
backend, and runs the loop (DESIGN.md, "The picture").

The loop (``run``, the only one: `vmm run`, `vmm test`, the debugger, the gdb stub and
`vmm trace` all drive it): run the CPU up to the next timer deadline (converted to an
instruction budget), fire the timers that are due, handle why the CPU stopped (HLT idles
virtual time to the next deadline; a stage breakpoint records a transition; the exit
port or a reset request ends or restarts the run), and return when a stop condition of
:class:`Stops` is met. Port and MMIO accesses go from the backend straight to the buses
(vmm.bus.BusPlatform), and a device's IRQ reaches the CPU through the 8259A without
passing through Machine: see docs/design-notes.md, "One port write, end to end".
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from vmm.api import MachineApi
from vmm.bus import BusPlatform, IoBus, MmioBus, Observer
from vmm.clock import VirtualClock
from vmm.config import MIB, MachineConfig, rtc_start_time
from vmm.cpu.base import PhysRegion, RunResult, StopReason
from vmm.cpu.state import RFLAGS_IF
from vmm.debug.stages import StageTracker
from vmm.errors import ImageError
from vmm.exits import GUEST_ENDED, MachineExit, Stops
from vmm.irq import IrqLine, NullIrqLine
from vmm.memory import GuestMemory
from vmm.net.hostwait import poll_all, wait_for_traffic
from vmm.physmap import DEFAULT_BIOS, ROOT, load_rom, physical_map
from vmm.snapshot.state import MachineState, capture, restore

__all__ = ["DEFAULT_BIOS", "GUEST_ENDED", "ROOT", "Machine", "MachineExit", "MachineState", "Stops", "load_rom",
           "write_stdout"]  # fmt: skip

MAX_SLICE = 20_000_000  # instructions between host checks (input, wall-clock timeout)


class SerialTap:
    """COM1's transmitter output as the machine keeps it: every byte in ``data``, each
    passed on to ``out`` (the terminal, a file, a socket, a test session)."""

    def __init__(self, out: Callable[[bytes], None] | None) -> None:
        self.data = bytearray()
        self.out = out

    def byte(self, value: int) -> None:
        self.data.append(value)
        if self.out is not None:
            self.out(bytes((value,)))


def _warn_on_stderr(line: str) -> None:
    print(f"vmm: {line}", file=sys.stderr, flush=True)


class Machine(MachineApi):
    """A PC: build it from a MachineConfig, then ``run()``."""

    def __init__(self, config: MachineConfig, serial_out: Callable[[bytes], None] | None = None,
                 cpu_factory: Callable | None = None) -> None:  # fmt: skip
        self.config = config.validate()
        self.clock = VirtualClock(config.clock_mhz, realtime=config.realtime)
        self.memory = GuestMemory(config.memory_mb * MIB)
        self.io = IoBus()
        self.mmio = MmioBus()
        self.serial = SerialTap(serial_out)
        self.serial_transcript = self.serial.data
        self.debug_transcript = bytearray()
        self.exit: MachineExit | None = None
        self._reset_requested = False
        self._idle_pending = False  # an exact run ended on HLT: idle when the next starts
        self._stops = Stops()
        self._port_hit: tuple[str, int, int, int, int] | None = None
        # Things the user should hear about while the guest runs on (one line each).
        self.warn: Callable[[str], None] = _warn_on_stderr
        self.disk_io_errors = 0
        self.rom = load_rom(config.bios or DEFAULT_BIOS) if config.kernel is None or config.bios else None
        self.stages = StageTracker(config.stage_entries.get("kernel"))
        self.disks = self._open_disks()
        self._build_devices()
        self.platform = BusPlatform(self.io, self.mmio, self.intc.acknowledge)
        self.cpu = (cpu_factory or self._default_cpu)(self)
        # The interrupt controller's INTR output (the 8259A's, or on `pc` the local
        # APIC's) drives the CPU's input directly (no stop in Machine).
        self.intc.on_output = self.cpu.set_irq_line
        self._show_local_apic()
        self._attach_data_window()
        self.clock.attach(lambda: self.cpu.instructions)
        self.clock.on_arm = self._on_timer_armed
        # NIC backends fed from host sockets: polled between slices, waited on while idle.
        self.external_nets = [b for b in self.pci.backends if b.external] if self.pci else []
        self.power_on()

    # ---- construction ----

    def _default_cpu(self, machine: Machine):
        from vmm.cpu.unicorn import UnicornCpu

        return UnicornCpu(self.memory, machine.platform, self.physical_map(), self.config.clock_mhz)

    def physical_map(self) -> list[PhysRegion]:
        """RAM, ROM copies, device windows and bus holes, as the CPU maps them."""
        return physical_map(self.memory.size, self.rom or b"", self.mmio.windows)

    def _open_disks(self) -> dict[str, object]:
        from vmm.devices.fdc82077 import FloppyMedia
        from vmm.disk.open import open_disk

        disks = {}
        self.floppy_media = None
        for disk in self.config.disks:
            if not disk.path.exists():
                raise ImageError(f"{disk.path}: disk image not found ({disk.slot})")
            disks[disk.slot] = open_disk(
                disk.path,
                read_only=disk.read_only or self.config.scratch_disks,
                scope=self.config.file_scope(disk.path.parent),
            )
            if self.config.scratch_disks:
                from vmm.disk.scratch import ScratchDisk

                disks[disk.slot] = ScratchDisk(disks[disk.slot])
            if disk.kind == "floppy":
                self.floppy_media = FloppyMedia(disks[disk.slot])
        return disks

    def _build_devices(self) -> None:
        from vmm.devices.ata import AtaController
        from vmm.devices.cmos import OPTION_NO_SERIAL_COPY, Mc146818Cmos
        from vmm.devices.debugport import DebugConsole, ExitPort, PostCodePort
        from vmm.devices.dma8237 import Dma8237Pair
        from vmm.devices.fdc82077 import Fdc82077
        from vmm.devices.i8042 import I8042
        from vmm.devices.pic8259 import Pic8259Pair
        from vmm.devices.pit8254 import Pit8254
        from vmm.devices.port92 import FastA20
        from vmm.devices.uart16550 import Uart16550
        from vmm.devices.vga import GRAPHICS_BASE, GRAPHICS_WINDOW, Vga

        self.pic = Pic8259Pair()
        kernel_irqchip = self.config.irqchip == "kernel"
        # With KVM's in-kernel irqchip the lines go to KVM (KVM_IRQ_LINE), and KVM answers
        # the PIC and PIT ports itself: vmm's own stay unwired.
        sink = (lambda n, level: self.cpu.set_irq(n, level)) if kernel_irqchip else self.pic.set_irq
        self.intc = self.pic  # what the CPU's INTR and INTA talk to
        self.lapic = self.ioapic = None
        if self.config.machine == "pc" and not kernel_irqchip:
            from vmm.devices.apic_wiring import wire_apics

            self.lapic, self.ioapic, sink = wire_apics(self.clock, self.pic, self.mmio)
            self.intc = self.lapic
        irq = [IrqLine(n, sink) for n in range(16)]
        self.irq_lines = irq
        self.pit = Pit8254(self.clock, NullIrqLine(0) if kernel_irqchip else irq[0])
        self.pit.irq0_edge_only = lambda: not self.pic.master.level_triggered & 1
        self.cmos = Mc146818Cmos(
            self.clock, self.memory.size, irq[8], initial=self.config.nvram,
            boot_order=self.config.boot_order, start_time=rtc_start_time(self.config),
            disk_sectors=[self.disks[slot].capacity if slot in self.disks else None for slot in ("ide0:0", "ide0:1")],
            forced_options=OPTION_NO_SERIAL_COPY if self.config.bios_serial is False else 0,
            floppy_type=self.floppy_media.format.drive_type if self.floppy_media else 0,
        )  # fmt: skip
        self.kbc = I8042(set_a20=self._set_a20, request_reset=self.request_reset, irq1=irq[1])
        self.port92 = FastA20(set_a20=self._set_a20, request_reset=self.request_reset)
        self.uart = Uart16550(irq[4], output=self.serial.byte)
        self.dma = Dma8237Pair(self.memory)
        self.fdc = Fdc82077(irq[6], self.dma, self.floppy_media)
        self.vga = Vga(self.memory)
        self.mmio.register(GRAPHICS_BASE, GRAPHICS_WINDOW, self.vga)
        self.ata = AtaController(
            irq[14], master=self.disks.get("ide0:0"), slave=self.disks.get("ide0:1"), on_io_error=self._on_disk_io_error
        )
        self.post = PostCodePort()
        self.debugcon = DebugConsole(self.debug_transcript.append)
        self.exit_port = ExitPort(self._on_exit_port)
        self.devices = [self.pic, *self.apics(), self.pit, self.cmos, self.kbc, self.port92, self.uart, self.vga,
                        self.ata, self.dma, self.fdc, self.post, self.debugcon, self.exit_port]  # fmt: skip
        self.pci = None
        if self.config.machine == "pc":
            self._build_pc_devices(sink)
        for device in self.devices:
            if kernel_irqchip and device in (self.pic, self.pit):
                continue
            for first, count in device.ports:
                self.io.register(first, count, device)

    def apics(self) -> list:
        """The local APIC and the I/O APIC when vmm emulates them (`pc` on Unicorn, or
        KVM with vmm's own interrupt controllers), else nothing."""
        return [self.lapic, self.ioapic] if self.lapic is not None else []

    def _show_local_apic(self) -> None:
        """CPUID's APIC bit follows the machine: set on `pc`, clear on `isapc`."""
        show = getattr(self.cpu, "show_local_apic", None)
        if show is not None:
            show(self.config.machine == "pc")

    def _build_pc_devices(self, irq_sink: Callable[[int, bool], None]) -> None:
        """The `pc` machine's additions to the ISA PC: the PCI bus and its devices."""
        from vmm.devices.pci.board import PciBoard

        self.pci = PciBoard(self.config, self.memory, self.io, self.disks, irq_sink, self.clock.now_ns,
                            on_io_error=self._on_disk_io_error)  # fmt: skip
        bus = self.pci.bus
        self.mmio.register(bus.mmio_base, bus.mmio_size, bus)
        self.devices.append(bus)

    # ---- wiring callbacks ----

    def _set_a20(self, enabled: bool) -> None:
        # The 8042 and port 0x92 drive one A20 line and the last write wins, as in QEMU
        # (the reference the BIOS tests compare with).
        self.cpu.set_a20(enabled)

    def _on_disk_io_error(self, exc: Exception) -> None:
        """A host write for the guest failed (disk full): the guest got an I/O error; say so once."""
        if not self.disk_io_errors:
            self.warn(f"{exc}; the guest gets I/O errors for the writes that fail")
        self.disk_io_errors += 1

    def _on_exit_port(self, status: int) -> None:
        if self.exit is not None and self.exit.reason == "exit-port":
            return  # a second write in the same translated block: the first one ended the run, as in QEMU
        self.exit = MachineExit("exit-port", status)
        self.cpu.request_stop()

    def request_reset(self) -> None:
        self._reset_requested = True
        self.cpu.request_stop()

    def request_stop(self, reason: str = "stopped") -> None:
        self.exit = MachineExit(reason)
        self.cpu.request_stop()

    # ---- observers ----

    def observe_io(self, observer: Observer) -> Callable[[], None]:
        """Call ``observer(in|out, port, size, value)`` after each port access; returns
        the function that removes it. Costs nothing while no observer is attached."""
        self.io.observers.append(observer)
        self._attach_data_window()  # observers see every word: no native data window

        def remove() -> None:
            self.io.observers.remove(observer)
            self._attach_data_window()

        return remove

    def observe_mmio(self, observer: Observer) -> Callable[[], None]:
        """As observe_io, for accesses that reach the MMIO bus (read|write, address...)."""
        self.mmio.observers.append(observer)
        return lambda: self.mmio.observers.remove(observer)

    def _on_timer_armed(self, deadline_ns: int) -> None:
        """A device armed a timer, perhaps from inside a CPU run (a port write): the run
        under way ends at that deadline too, so the timer fires at the same instruction
        however the host slices the run."""
        self.cpu.limit_run(self.clock.deadline_insns(deadline_ns))

    # ---- power ----

    def power_on(self) -> None:
        for device in self.devices:
            device.reset()
        self.cpu.reset()
        self.cpu.entropy_state = self.config.rng_seed
        self.cpu.set_irq_line(self.intc.output)
        self.stages.timeline.clear()
        if self.config.kernel is not None:
            from vmm.boot import load_kernel

            if self.lapic is not None:
                self.lapic.virtual_wire()  # as the BIOS would have left it
            entry = load_kernel(self, self.config.kernel, self.config.append, self.config.initrd)
            self.stages.kernel_entry = entry
            self.stages.enter("kernel", 0, 0, entry)
        else:
            self.stages.enter("firmware", 0, 0, 0xFFFFFFF0)
        self._arm_stage_watch()

    def _arm_stage_watch(self) -> None:
        self.cpu.set_breakpoint(self.stages.next_breakpoint())
        self.cpu.watch_user_mode(self.stages.current != "init")

    def _on_stage_stop(self, stage: str) -> None:
        state_pc = self.cpu.get_state().pc
        self.stages.enter(stage, self.cpu.instructions, self.clock.now_ns(), state_pc)
        self._arm_stage_watch()
        if self.on_stage is not None:
            self.on_stage(self.stages.timeline[-1])
        if stage in self._stops.stages and self.exit is None:
            self.exit = MachineExit("stage", detail=stage)

    on_stage: Callable | None = None

    # ---- the loop ----

    def run(self, max_instructions: int | None = None, timeout: float | None = None,
            pace: bool = False, poll: Callable[[], None] | None = None,
            stops: Stops | None = None) -> MachineExit:  # fmt: skip
        """Run until the guest ends (exit port, halt for good, triple fault, error), or
        ``max_instructions`` more have retired (exit ``limit``), or ``timeout`` seconds
        of wall time passed, or a condition of ``stops`` is met. ``poll`` is called
        between slices (host input); ``pace`` holds virtual time to the wall clock."""
        self.exit = None
        stops = stops or Stops()
        self._stops = stops
        limit = None if max_instructions is None else self.cpu.instructions + max_instructions
        wall_start = time.monotonic()
        virtual_start = self.clock.now_ns()
        remove_port_watch = self.observe_io(self._watch_ports) if stops.ports else None
        try:
            while self.exit is None:
                if self._idle_pending:
                    self._idle_pending = False
                    self._idle(pace, wall_start, virtual_start)
                    if self.exit is not None:
                        break
                if poll is not None:
                    poll()
                    if self.exit is not None:  # the host side stopped the machine
                        break
                if self.external_nets:
                    poll_all(self.external_nets)
                if limit is not None and self.cpu.instructions >= limit:
                    self.exit = MachineExit("limit", detail=f"stopped after {max_instructions:,} instructions")
                    break
                result = self._run_slice(self._budget(limit, stops.every), stops)
                self.clock.run_due()
                if result is not None:
                    self._handle(result, pace, wall_start, virtual_start, at_limit=limit is not None
                                 and self.cpu.instructions >= limit)  # fmt: skip
                if self.exit is None and self._idle_pending:
                    self.exit = MachineExit("limit", detail=f"stopped after {max_instructions:,} instructions")
                if self.exit is None and self._port_hit is not None:
                    self.exit = MachineExit("port", port=self._port_hit)
                if self.exit is None and stops.after_slice is not None:
                    stops.after_slice()
                if timeout is not None and self.exit is None and time.monotonic() - wall_start > timeout:
                    self.exit = MachineExit("timeout", detail=f"stopped after {timeout:g} s of wall time")
        finally:
            if remove_port_watch is not None:
                remove_port_watch()
            self._stops = Stops()
        return self.exit

    def _budget(self, limit: int | None, every: int | None) -> int:
        """Instructions the next slice may run: to the next timer deadline, the limit, the
        next multiple of ``every``, and at most MAX_SLICE (so the host is polled)."""
        now = self.cpu.instructions
        budget = MAX_SLICE
        deadline = self.clock.next_deadline_ns()
        if deadline is not None and not self.clock.realtime:
            budget = min(budget, max(1, self.clock.deadline_insns(deadline) - now))
        elif deadline is not None:
            budget = min(budget, max(1, self.clock.ns_to_insns(deadline - self.clock.now_ns())))
        if limit is not None:
            budget = min(budget, limit - now)
        if every:
            budget = min(budget, (now // every + 1) * every - now)
        return budget

    def _run_slice(self, budget: int, stops: Stops) -> RunResult | None:
        """One slice on the CPU; None when a debug stop already set ``exit``."""
        self._port_hit = None
        if stops.debug is None:
            return self.cpu.run(budget)
        stop = stops.debug.run_exact(budget, armed=stops.armed)
        if stop.kind == "machine":
            return stop.result
        if stop.kind == "watchpoint":
            self.exit = MachineExit("watchpoint", address=stop.access.pc, access=stop.access)
            return None
        if stop.kind in ("breakpoint", "watch") and stops.armed:
            self.exit = MachineExit(stop.kind, address=stop.address)
            return None
        return RunResult(StopReason.DEADLINE)  # done, or a stop that does not count now

    def _watch_ports(self, direction: str, port: int, size: int, value: int) -> None:
        if port in self._stops.ports and self._port_hit is None:
            self._port_hit = (direction, port, size, value, self.cpu.get_state().pc)
            self.cpu.request_stop()

    def _handle(self, result: RunResult, pace: bool, wall_start: float, virtual_start: int,
                at_limit: bool = False) -> None:  # fmt: skip
        reason = result.reason
        if reason == StopReason.DEADLINE:
            return
        if reason == StopReason.BREAKPOINT:
            self._on_stage_stop("kernel" if self.stages.current == "bootloader" else "bootloader")
            return
        if reason == StopReason.USER:
            self._on_stage_stop("init")
            return
        if reason == StopReason.REQUESTED:
            if self._reset_requested:
                self._reset_requested = False
                self.exit = None
                self.reset()
            return
        if reason == StopReason.HALT:
            if at_limit and self._stops.debug is not None:
                # An exact run that ends on HLT idles when the next run starts, so that
                # stops land alike however a run is cut (reverse execution replays).
                self._idle_pending = True
                return
            self._idle(pace, wall_start, virtual_start)
            return
        if reason == StopReason.SHUTDOWN:
            self.exit = MachineExit("triple-fault", 0, result.detail, result.fault_chain)
            return
        self.exit = MachineExit("error", 0, result.detail)

    @property
    def idle_pending(self) -> bool:
        """An exact run ended on HLT and the idle is still to come (part of a checkpoint)."""
        return self._idle_pending

    @idle_pending.setter
    def idle_pending(self, value: bool) -> None:
        self._idle_pending = value

    def _idle(self, pace: bool, wall_start: float, virtual_start: int) -> None:
        """HLT: let virtual time pass to the next timer deadline (or stop for good)."""
        state_flags = self.cpu.get_state().rflags
        if self.intc.output and state_flags & RFLAGS_IF:
            return  # an interrupt is already waiting: the CPU takes it on resume
        deadline = self.clock.next_deadline_ns()
        if not state_flags & RFLAGS_IF or deadline is None:
            pc = self.cpu.get_state().pc
            why = "interrupts disabled" if not state_flags & RFLAGS_IF else "no timer armed"
            self.exit = MachineExit("halted", 0, f"CPU halted with {why} at pc {pc:#x}")
            return
        if self._stops.idle:
            self._idle_pending = True  # the idle is still to come when the run goes on
            self.exit = MachineExit("idle", detail="the guest idles (HLT with interrupts on)")
            return
        now = self.clock.now_ns()
        if deadline > now and self.external_nets:
            waited = wait_for_traffic(self.external_nets, deadline - now)  # vmm/net/hostwait.py
            if not self.clock.realtime:
                self.clock.idle(waited)
                self.cpu.advance_tsc(waited)
            self.clock.run_due()
            return
        if deadline > now:
            if pace and not self.clock.realtime:
                ahead = (deadline - virtual_start) / 1e9 - (time.monotonic() - wall_start)
                if ahead > 0:
                    time.sleep(min(ahead, 0.05))
            if self.clock.realtime:
                time.sleep(max(0.0, min((deadline - now) / 1e9, 0.05)))
            else:
                self.clock.idle(deadline - now)
                self.cpu.advance_tsc(deadline - now)
            self.clock.run_due()

    def reset(self) -> None:
        """A guest-requested reset (8042 pulse, port 0x92, triple fault): RAM keeps its
        contents and virtual time goes on (the instruction counter is not rewound)."""
        instructions, tsc = self.cpu.instructions, self.cpu.tsc_offset
        for device in self.devices:
            device.reset()
        self.cpu.reset()
        self.cpu.instructions, self.cpu.tsc_offset = instructions, tsc
        self.cpu.set_irq_line(self.intc.output)
        self._arm_stage_watch()

    def switch_cpu(self, accel: str) -> None:
        """Continue on another CPU backend ('unicorn' or 'kvm') from exactly this state."""
        from vmm.cpu.select import cpu_factory_for

        factory = cpu_factory_for(accel) or self._default_cpu
        state = self.cpu.get_state()
        instructions, tsc, entropy = self.cpu.instructions, self.cpu.tsc_offset, self.cpu.entropy_state
        self.cpu.close()
        self.cpu = factory(self)
        self.intc.on_output = self.cpu.set_irq_line
        self._show_local_apic()
        self.cpu.set_state(state)
        self.cpu.instructions = instructions
        self.cpu.tsc_offset = tsc
        self.cpu.entropy_state = entropy
        self.cpu.set_irq_line(self.intc.output)
        self._attach_data_window()
        self._arm_stage_watch()

    def _attach_data_window(self) -> None:
        """Let a backend that can (Unicorn) serve the ATA data port from the device's
        block buffer natively; others take string I/O through io_read_string."""
        serve = getattr(self.cpu, "serve_data_port", None)
        if serve is None or self.io.observers:
            self.ata.attach_data_window(None)
            return
        done = self.ata.data_window_done
        self.ata.attach_data_window(lambda port, buf, position, writing: serve(port, buf, position, writing, done))

    # ---- whole-machine state (DESIGN.md principle 4) ----

    def save_state(self, with_ram: bool = True) -> MachineState:
        """Everything needed to continue exactly here: CPU, counters, clock, devices, RAM."""
        return capture(self, with_ram)

    def load_state(self, state: MachineState) -> None:
        restore(self, state)
        self._arm_stage_watch()

    # ---- what users and tests look at ----

    def send(self, data: bytes | str) -> None:
        """Type ``data`` on the serial console."""
        self.uart.receive(data.encode() if isinstance(data, str) else data)

    def screen_text(self) -> str:
        return self.vga.screen_text()

    def close(self) -> None:
        self.cpu.close()
        if self.pci is not None:
            self.pci.close()
        for disk in self.disks.values():
            disk.close()
        self.memory.close()


def write_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
