"""The debugger's engine: run a Machine under control, stop where asked, go back.

Forward execution retires exact instruction counts (vmm.cpu.unicorn_debug) and fires the
machine's timers exactly at their deadlines, so a run is a function of where it started
and where it was stopped. Going back restores the nearest checkpoint (Machine.save_state,
taken every ``checkpoint_every`` instructions at a stop) and runs forward again with the
same stops: the state reached is the one the forward run had there (DESIGN.md
principle 3). An interrupt a device raises in the middle of a translated block is taken
at the next block start, so replays stop exactly where the original run stopped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from vmm.cpu.base import (
    FEATURE_BLOCK_WATCH,
    FEATURE_BREAKPOINTS,
    FEATURE_REVERSE,
    FEATURE_WATCHPOINTS,
    DebugUnsupported,
    WatchRange,
)
from vmm.cpu.paging import PageFault, PhysicalReader, read_linear, translate
from vmm.debug.symbols import Symbols
from vmm.errors import VmmError
from vmm.machine import Stops

MODES = ("real", "protected", "long", "compat", "vm86")
WATCHED_REGISTERS = ("cr0", "cr4", "efer", "gdt", "idt")
PAGE = 4096
# The debug feature each kind of breakpoint needs, and what a backend without it cannot do.
NEEDS = {"addr": FEATURE_BREAKPOINTS, "watch": FEATURE_WATCHPOINTS, "mode": FEATURE_BLOCK_WATCH,
         "reg": FEATURE_BLOCK_WATCH, "vector": FEATURE_BLOCK_WATCH}  # fmt: skip
CANNOT = {FEATURE_BREAKPOINTS: "stop at an address", FEATURE_WATCHPOINTS: "watch memory",
          FEATURE_BLOCK_WATCH: "break on mode, register or vector changes"}  # fmt: skip


class DebugError(VmmError):
    """A debugger command cannot be done as asked (bad address, unknown symbol...)."""


@dataclass
class Breakpoint:
    number: int
    kind: str  # addr | stage | mode | reg | vector | port | watch
    value: int | str | tuple
    label: str

    def describe(self) -> str:
        return f"#{self.number} {self.label}"


@dataclass
class Event:
    """Why the debugger stopped, as a line a user reads."""

    kind: str  # done | breakpoint | stage | mode | reg | vector | port | watch | exit | error
    text: str = ""
    breakpoint: Breakpoint | None = None
    access: object | None = None  # MemoryAccess for a watchpoint


@dataclass
class _Checkpoint:
    state: object  # MachineState without RAM
    pages: list[bytes]
    idle_pending: bool


@dataclass
class Debugger:
    machine: object
    symbols: Symbols | None = None
    checkpoint_every: int | None = 200_000
    max_checkpoints: int = 48
    breakpoints: list[Breakpoint] = field(default_factory=list)

    def __post_init__(self) -> None:
        try:
            self.cpu = self.machine.cpu.debug()
        except DebugUnsupported as exc:
            raise DebugError(str(exc)) from None
        if FEATURE_REVERSE not in self.cpu.features:
            self.checkpoint_every = None  # replays would not reach the same instruction
        self.reader = PhysicalReader(self.machine)
        self.cpu.read_linear = lambda addr, size: read_linear(self.reader, self.state(), addr, size)
        self._next_number = 1
        self._checkpoints: dict[int, _Checkpoint] = {}
        self._page_pool: dict[bytes, bytes] = {}
        self._stops: list[int] = []  # instruction counts where execution was stopped
        self._watch_values: dict[str, object] = {}
        self._watch_event: Event | None = None
        self._last_mode = self.state().mode
        self._sync_interrupts()
        self.finished: Event | None = None
        self.interrupt_requested = False  # set by Ctrl-C (another thread or a signal handler)
        self.last_irq_vector: int | None = None
        self._watch_irq_acknowledge()
        if self.checkpoint_every:
            self._checkpoint()

    def _watch_irq_acknowledge(self) -> None:
        """Note the vector of each hardware interrupt the CPU takes (the PIC's answer to
        the INTA cycle), for ``break vector N`` on IRQ vectors."""
        platform = getattr(self.machine, "platform", None)
        acknowledge = getattr(platform, "interrupt_acknowledge", None)
        if acknowledge is None:
            return

        def noted() -> int:
            vector = acknowledge()
            self.last_irq_vector = vector
            return vector

        platform.interrupt_acknowledge = noted

    def interrupt(self) -> None:
        """Stop a run under way at the next host check (Ctrl-C); safe from any thread."""
        self.interrupt_requested = True

    def _poll_interrupt(self) -> None:
        if self.interrupt_requested:
            from vmm.machine import MachineExit

            self.interrupt_requested = False
            self.machine.exit = MachineExit("interrupted", detail="Ctrl-C")

    # ---- state ----

    def state(self):
        return self.machine.cpu.get_state()

    @property
    def instructions(self) -> int:
        return self.machine.cpu.instructions

    def ram_hash(self) -> str:
        return hashlib.sha256(self.machine.memory.read(0, self.machine.memory.size)).hexdigest()

    # ---- breakpoints ----

    def add(self, kind: str, value: int | str, label: str) -> Breakpoint:
        feature = NEEDS.get(kind)
        if feature is not None and feature not in self.cpu.features:
            raise DebugError(f"the {self.machine.cpu.name} backend cannot {CANNOT[feature]} "
                             f"(it can: {', '.join(sorted(self.cpu.features))}; --accel unicorn can all)")  # fmt: skip
        bp = Breakpoint(self._next_number, kind, value, label)
        self._next_number += 1
        self.breakpoints.append(bp)
        if kind == "addr":
            self.cpu.add_breakpoint(int(value))
        try:
            self._rearm_memory()
        except PageFault:
            self.breakpoints.remove(bp)
            raise
        self._rearm_watch()
        return bp

    def delete(self, number: int) -> Breakpoint:
        for bp in self.breakpoints:
            if bp.number == number:
                self.breakpoints.remove(bp)
                if bp.kind == "addr" and not any(b.kind == "addr" and b.value == bp.value for b in self.breakpoints):
                    self.cpu.remove_breakpoint(int(bp.value))
                self._rearm_memory()
                self._rearm_watch()
                return bp
        raise DebugError(f"no breakpoint #{number}")

    def _rearm_memory(self) -> None:
        """Protect the physical pages under the watched linear ranges, translated now
        (through the page tables as they are: a watch set before paging changes keeps
        the physical page it was set on)."""
        state = self.state()
        ranges = []
        for bp in self.breakpoints:
            if bp.kind != "watch":
                continue
            start, length, access = bp.value
            pages = set()
            for linear in range(start & ~(PAGE - 1), start + length, PAGE):
                phys = translate(self.reader, state, linear) & ~(PAGE - 1)
                if not self.reader.memory.contains(phys, PAGE):
                    raise DebugError(f"{linear:#x} is not in RAM (physical {phys:#x}): cannot watch it")
                pages.add(phys)
            ranges.append(WatchRange(start, length, access, tuple(sorted(pages))))
        self.cpu.set_watchpoints(ranges)

    def _port_event(self, exit_) -> Event:
        direction, port, size, value, pc = exit_.port
        bp = next(b for b in self.breakpoints if b.kind == "port" and b.value == port)
        text = (f"port {port:#x}: {direction} of {size} byte{'s' if size > 1 else ''}, "
                f"value {value:#x}, by {self._format_at(pc)} ({bp.describe()})")  # fmt: skip
        return Event("port", text, bp)

    def _format_at(self, linear: int) -> str:
        state = self.state()
        if state.mode in ("real", "vm86"):
            cs = state.segments["cs"]
            return f"{cs.selector:04x}:{(linear - cs.base) & 0xFFFF:04x}"
        return f"{linear:#x}"

    def _watch_hit_event(self, access) -> Event:
        for bp in self.breakpoints:
            if bp.kind != "watch":
                continue
            start, length, mode = bp.value
            if start < access.address + access.size and access.address < start + length and access.kind[0] in mode:
                break
        else:
            bp = None
        what = f"{access.kind} of {access.size} byte{'s' if access.size > 1 else ''} at {access.address:#x}"
        if access.kind == "write" and access.old and access.new:
            old, new = (int.from_bytes(v, "little") for v in (access.old, access.new))
            what += f" (old {old:#x}, new {new:#x})"
        elif access.new:
            what += f" (value {int.from_bytes(access.new, 'little'):#x})"
        number = f" {bp.number}" if bp else ""
        return Event("watch", f"watchpoint{number}: {what} by {self._format_at(access.pc)}", bp, access)

    def _rearm_watch(self) -> None:
        needs = any(bp.kind in ("mode", "reg", "vector") for bp in self.breakpoints)
        self.cpu.set_block_watch(self._block_watch if needs else None)
        self._watch_values = self._register_values()
        self._last_mode = self.state().mode
        self._sync_interrupts()

    def _register_values(self) -> dict[str, object]:
        if not any(bp.kind == "reg" for bp in self.breakpoints):
            return {}
        s = self.state()
        return {"cr0": s.cr0, "cr4": s.cr4, "efer": s.efer, "gdt": (s.gdt.base, s.gdt.limit),
                "idt": (s.idt.base, s.idt.limit)}  # fmt: skip

    def _sync_interrupts(self) -> None:
        self._interrupts_seen = self._interrupt_total()
        self._irqs_seen = self.machine.cpu.stats.get("irqs", 0)

    def _interrupt_total(self) -> int:
        stats = self.machine.cpu.stats
        return stats.get("irqs", 0) + stats.get("exceptions", 0)

    def _mode_from_hflags(self) -> str:
        return self.cpu.mode()

    def _block_watch(self, _pc: int) -> bool:
        """At each block start while mode/register/vector breaks are armed (slow path)."""
        modes = [bp for bp in self.breakpoints if bp.kind == "mode"]
        if modes:
            mode = self._mode_from_hflags()
            if mode != self._last_mode:
                old, self._last_mode = self._last_mode, mode
                for bp in modes:
                    if mode == bp.value:
                        self._watch_event = Event("mode", f"mode {old} -> {mode} ({bp.describe()})", bp)
                        return True
        regs = [bp for bp in self.breakpoints if bp.kind == "reg"]
        if regs:
            values = self._register_values()
            for bp in regs:
                old, new = self._watch_values.get(bp.value), values[bp.value]
                if old != new:
                    self._watch_values = values
                    self._watch_event = Event("reg", f"{bp.value} changed: {_show(old)} -> {_show(new)} "
                                                     f"({bp.describe()})", bp)  # fmt: skip
                    return True
            self._watch_values = values
        vectors = [bp for bp in self.breakpoints if bp.kind == "vector"]
        if vectors:
            total = self._interrupt_total()
            if total != self._interrupts_seen:
                self._interrupts_seen = total
                irqs = self.machine.cpu.stats.get("irqs", 0)
                if irqs != self._irqs_seen:  # a hardware interrupt: the PIC's vector
                    self._irqs_seen = irqs
                    vector = self.last_irq_vector
                else:  # an exception or INT n
                    chain = self.machine.cpu.fault_chain()
                    vector = chain[-1][0] if chain else None
                for bp in vectors:
                    if vector == bp.value:
                        text = f"interrupt vector {vector:#x} entered ({bp.describe()})"
                        self._watch_event = Event("vector", text, bp)
                        return True
        return False

    # ---- running ----

    def step(self, count: int = 1) -> Event:
        return self._advance(self.instructions + count, honour_breaks=False)

    def cont(self, limit: int | None = None) -> Event:
        target = None if limit is None else self.instructions + limit
        return self._advance(target, honour_breaks=True)

    def until(self, linear: int, limit: int | None = None) -> Event:
        """Run to ``linear`` (a temporary breakpoint), stopping early at other breakpoints."""
        temporary = linear not in self.cpu.breakpoints
        if temporary:
            self.cpu.add_breakpoint(linear)
        try:
            event = self.cont(limit)
        finally:
            if temporary:
                self.cpu.remove_breakpoint(linear)
        if event.kind == "breakpoint" and event.breakpoint is None:
            event.text = f"reached {linear:#x}"
            event.kind = "done"
        return event

    def _advance(self, target: int | None, honour_breaks: bool) -> Event:
        if self.finished is not None:
            return self.finished
        start = self.instructions
        pc = self.state().pc
        if honour_breaks and pc in self.cpu.breakpoints and (target is None or target > start):
            # Leave the breakpoint we are sitting on before arming it again.
            event = self._advance(start + 1, honour_breaks=False)
            if event.kind != "done" or (target is not None and self.instructions >= target):
                return event
        if honour_breaks:
            self._last_mode = self._mode_from_hflags()
            self._watch_values = self._register_values()
            self._sync_interrupts()
        event = self._loop(target, honour_breaks)
        self._note_stop()
        return event

    def _loop(self, target: int | None, honour_breaks: bool) -> Event:
        """Run the machine (its one loop, Machine.run) exactly to ``target`` or until a
        stop, checkpointing on the way; the stop as an Event."""
        machine = self.machine
        stops = Stops(debug=self.cpu, armed=honour_breaks, every=self.checkpoint_every,
                      after_slice=self._maybe_checkpoint)  # fmt: skip
        if honour_breaks:
            stops.stages = frozenset(bp.value for bp in self.breakpoints if bp.kind == "stage")
            stops.ports = frozenset(bp.value for bp in self.breakpoints if bp.kind == "port")
        while True:
            self._watch_event = None
            count = None if target is None else max(0, target - self.instructions)
            exit_ = machine.run(max_instructions=count, stops=stops, poll=self._poll_interrupt)
            if exit_.reason == "interrupted":
                return Event("interrupted", f"interrupted (Ctrl-C) at insn {self.instructions:,}")
            if exit_.guest_ended or exit_.reason == "stopped":
                return self._finish(exit_)
            if exit_.reason == "limit":
                return Event("done")
            if exit_.reason == "watchpoint":
                return self._watch_hit_event(exit_.access)
            if exit_.reason == "breakpoint":
                return self._breakpoint_event(exit_.address)
            if exit_.reason == "port":
                return self._port_event(exit_)
            if exit_.reason == "stage":
                bp = next(b for b in self.breakpoints if b.kind == "stage" and b.value == exit_.detail)
                t = machine.stages.timeline[-1]
                return Event("stage", f"stage {exit_.detail} at insn {t.instructions:,} ({bp.describe()})", bp)
            if exit_.reason == "watch" and self._watch_event is not None:
                return self._watch_event
            if exit_.reason not in ("watch", "timeout"):
                return self._finish(exit_)

    def _maybe_checkpoint(self) -> None:
        every = self.checkpoint_every
        if every and self.instructions % every == 0 and not self.machine.idle_pending:
            self._checkpoint()

    def _breakpoint_event(self, address: int | None) -> Event:
        for bp in self.breakpoints:
            if bp.kind == "addr" and bp.value == address:
                return Event("breakpoint", f"breakpoint {bp.describe()}", bp)
        return Event("breakpoint", f"stopped at {address:#x}")

    def _finish(self, exit_) -> Event:
        from vmm.cpu.faults import describe_fault

        text = f"machine stopped: {exit_.reason}"
        if exit_.reason == "exit-port":
            text = f"guest exit status {exit_.status}"
        elif exit_.detail:
            text += f" ({exit_.detail})"
        if exit_.fault_chain:
            text += "; the faults that led to it:\n" + "\n".join(
                f"  {describe_fault(*fault)}" for fault in exit_.fault_chain[-3:])  # fmt: skip
        self.finished = Event("exit", text)
        return self.finished

    def _note_stop(self) -> None:
        if not self._stops or self._stops[-1] != self.instructions:
            self._stops.append(self.instructions)

    # ---- checkpoints and going back ----

    def _checkpoint(self) -> None:
        if self.instructions in self._checkpoints:
            return  # a replay passing an existing checkpoint: the same state
        state = self.machine.save_state(with_ram=False)
        ram = self.machine.memory.view
        pool = self._page_pool
        pages = []
        for offset in range(0, self.machine.memory.size, PAGE):
            page = bytes(ram[offset : offset + PAGE])
            pages.append(pool.setdefault(page, page))
        self._checkpoints[self.instructions] = _Checkpoint(state, pages, self.machine.idle_pending)
        if len(self._checkpoints) > self.max_checkpoints:
            oldest = sorted(self._checkpoints)[1]  # keep the first: every replay can start there
            del self._checkpoints[oldest]
            self._page_pool = {}
            for cp in self._checkpoints.values():
                for page in cp.pages:
                    self._page_pool.setdefault(page, page)

    def back(self, count: int = 1) -> Event:
        target = self.instructions - count
        if target < 0:
            raise DebugError(f"cannot go back {count:,} instructions: only {self.instructions:,} ran")
        return self.goto(target)

    def goto(self, target: int) -> Event:
        """Restore the nearest checkpoint at or before ``target`` and replay to it."""
        if FEATURE_REVERSE not in self.cpu.features:
            raise DebugError(f"the {self.machine.cpu.name} backend cannot go back (its runs are not "
                             "instruction-exact; --accel unicorn can)")  # fmt: skip
        if not self.checkpoint_every:
            raise DebugError("reverse execution needs checkpoints (they are off)")
        starts = [c for c in self._checkpoints if c <= target]
        if not starts:
            raise DebugError(f"no checkpoint at or before instruction {target:,}")
        start = max(starts)
        cp = self._checkpoints[start]
        state = cp.state
        state.ram = b"".join(cp.pages)
        self.machine.load_state(state)
        state.ram = None
        self.machine.idle_pending = cp.idle_pending
        self.finished = None
        self.machine.exit = None
        self._watch_values = self._register_values()
        self._last_mode = self.state().mode
        self._sync_interrupts()
        # Replay through the same stops the forward run made, so block starts coincide.
        stops = [s for s in self._stops if start < s < target]
        for stop in stops:
            self._loop(stop, honour_breaks=False)
        event = self._loop(target, honour_breaks=False)
        self._stops = [s for s in self._stops if s <= target]
        # Forward from here the stops may differ: later checkpoints would not be reached.
        for later in [c for c in self._checkpoints if c > target]:
            del self._checkpoints[later]
        self._note_stop()
        if event.kind == "done":
            event.text = f"back at instruction {self.instructions:,}"
        return event

    def close(self) -> None:
        self.cpu.close()


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "base=" + hex(value[0]) + " limit=" + hex(value[1])
    return hex(value) if isinstance(value, int) else str(value)
