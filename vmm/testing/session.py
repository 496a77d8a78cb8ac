"""GuestSession: one booted machine, driven the way a test describes a boot.

Both the expectation-file runner and the pytest ``vm`` fixture drive a guest through
this class: wait for a serial regex, a stage or the guest's exit within a budget of
instructions or virtual time, type input, look at the screen and memory.

Waiting for serial output stops the CPU at the byte that completes the match (the UART
callback asks the machine to stop), so input sent next lands at the same instruction on
every run: a session's outcome is a function of the image and the calls made on it.
That is what makes the failure replay in :mod:`vmm.testing.replay` possible: every call
is logged, and a fresh session repeating the log reaches the same instruction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import regex

from vmm.config import MachineConfig
from vmm.cpu.base import FEATURE_TRACE, CpuDebug, DebugUnsupported
from vmm.errors import VmmError, hide_for_vmm_errors
from vmm.machine import Machine, MachineExit, Stops
from vmm.testing.spec import Budget

SCREEN_POLL = 1_000_000  # instructions between looks at the VGA screen (it raises no event)
ENDED = ("exit-port", "halted", "triple-fault", "error")


__tracebackhide__ = hide_for_vmm_errors
REGEX_TIME_LIMIT = 60.0  # seconds one serial search may take when the session has no wall timeout


class ExpectationFailed(VmmError, AssertionError):
    """A step's expectation was not met: one line saying what was wanted and what happened."""


@dataclass
class Outcome:
    """How one wait ended: ``met``, ``budget`` (ran out), ``ended`` (the guest stopped) or ``wall``."""

    how: str
    instructions: int  # used by this wait


class GuestSession:
    def __init__(self, config: MachineConfig, wall_timeout: float | None = None,
                 cpu_factory: Callable | None = None, machine: Machine | None = None,
                 release: Callable[[Machine], None] | None = None) -> None:  # fmt: skip
        """Boot ``config``, or drive ``machine`` (a started machine, e.g. reverted to a snapshot:
        its transcript so far is history, searches start after it; ``release`` takes it back
        at ``close`` instead of closing it)."""
        self.config = config
        if machine is None:
            machine = Machine(config, serial_out=self._on_serial, cpu_factory=cpu_factory)
        else:
            machine.serial.out = self._on_serial
        self.machine = machine
        self._release = release
        self.mark = len(machine.serial_transcript)  # serial searches start here: just past the previous match
        # instruction count when each serial byte was written (a start state's bytes: when it was saved)
        self.byte_insns: list[int] = [machine.instructions] * len(machine.serial_transcript)
        self.ended: MachineExit | None = None
        self.log: list[tuple[str, tuple]] = []  # every call, for a replay
        self.wall_deadline = None if wall_timeout is None else time.monotonic() + wall_timeout
        self._watch: regex.Pattern[bytes] | None = None
        self._budget_hit = False
        self.tail: TailRecorder | None = None  # set by a replay

    # ---- what a test looks at ----

    @property
    def serial(self) -> bytes:
        return bytes(self.machine.serial_transcript)

    @property
    def stage(self) -> str | None:
        return self.machine.stages.current

    @property
    def stages(self) -> list[str]:
        return [t.stage for t in self.machine.stages.timeline]

    @property
    def instructions(self) -> int:
        return self.machine.instructions

    @property
    def time_ns(self) -> int:
        return self.machine.time_ns

    @property
    def exit_status(self) -> int | None:
        """The guest's exit-port status, or None while it runs (or if it ended otherwise)."""
        return self.ended.status if self.ended and self.ended.reason == "exit-port" else None

    def screen(self) -> str:
        return self.machine.screen_text()

    # ---- driving the guest ----

    def send(self, data: str | bytes) -> None:
        self.log.append(("send", (data,)))
        self.machine.send(data)

    def send_keys(self, *keys: str) -> None:
        """Press keys on the PS/2 keyboard: each a key name as tmux spells it (``Up``,
        ``F1``, ``Escape``, ``C-c``, ``M-x``) or, if it names no key, text typed as is."""
        from vmm.keys import scancodes_for_keys

        self.log.append(("send_keys", keys))
        self.machine.kbc.key_scancodes(scancodes_for_keys(keys))

    def expect(self, pattern: str | bytes, within: Budget) -> regex.Match[bytes]:
        """Run until ``pattern`` (a regex) appears in the serial output after the last match."""
        self.log.append(("expect", (pattern, within)))
        compiled = regex.compile(pattern.encode("latin-1") if isinstance(pattern, str) else pattern)
        self._watch = compiled
        try:
            outcome = self._run(within, lambda: self._search(compiled) is not None)
        finally:
            self._watch = None
        match = self._search(compiled)
        if match is None:
            shown = compiled.pattern.decode("latin-1")
            raise ExpectationFailed(f"no serial output matching {shown!r} {self._why(outcome, within)}")
        self.mark = match.end()
        return match

    def _search(self, compiled: regex.Pattern[bytes]) -> regex.Match[bytes] | None:
        """Search the serial output past the last match, within the test's wall-clock time: a
        pattern that backtracks without end ('(.+)+Z') fails the test instead of hanging it."""
        left = REGEX_TIME_LIMIT if self.wall_deadline is None else self.wall_deadline - time.monotonic()
        try:
            return compiled.search(self.machine.serial_transcript, self.mark, timeout=max(0.01, left))
        except TimeoutError:
            shown = compiled.pattern.decode("latin-1")
            raise ExpectationFailed(
                f"matching {shown!r} against the serial output ran past the test's timeout "
                "(a pattern that backtracks without end?)"
            ) from None

    def wait_stage(self, stage: str, within: Budget) -> None:
        self.log.append(("wait_stage", (stage, within)))
        outcome = self._run(within, lambda: stage in self.stages, stops=Stops(stages=frozenset({stage})))
        if stage not in self.stages:
            raise ExpectationFailed(f"stage {stage!r} not reached {self._why(outcome, within)}")

    def wait_exit(self, within: Budget) -> MachineExit:
        """Run until the guest ends (exit port, halt for good, triple fault)."""
        self.log.append(("wait_exit", (within,)))
        outcome = self._run(within, lambda: self.ended is not None)
        if self.ended is None:
            raise ExpectationFailed(f"the guest did not end {self._why(outcome, within)}")
        return self.ended

    def wait_screen(self, text: str, within: Budget) -> None:
        self.log.append(("wait_screen", (text, within)))
        outcome = self._run(within, lambda: text in self.screen(), slice_cap=SCREEN_POLL)
        if text not in self.screen():
            raise ExpectationFailed(f"the screen does not show {text!r} {self._why(outcome, within)}")

    def run_for(self, within: Budget) -> Outcome:
        self.log.append(("run_for", (within,)))
        return self._run(within, lambda: False)

    # ---- the loop ----

    def _run(self, budget: Budget, done: Callable[[], bool], slice_cap: int | None = None,
             stops: Stops | None = None) -> Outcome:  # fmt: skip
        machine = self.machine
        start = machine.instructions
        if done():
            return Outcome("met", 0)
        if self.ended is not None:
            return Outcome("ended", 0)
        if self.tail is not None and self.tail.finished(machine):
            return Outcome("budget", 0)
        limit = None if budget.instructions is None else start + budget.instructions
        timer = None
        self._budget_hit = False
        if budget.time_ns is not None:
            timer = machine.clock.timer(self._on_budget_timer, "test budget")
            timer.arm_after(budget.time_ns)
        try:
            while True:
                step = None if limit is None else limit - machine.instructions
                if step is not None and step <= 0:
                    return Outcome("budget", machine.instructions - start)
                if slice_cap is not None:
                    step = slice_cap if step is None else min(step, slice_cap)
                if self.tail is not None:
                    step = self.tail.bound(machine, step)
                wall = None if self.wall_deadline is None else max(0.001, self.wall_deadline - time.monotonic())
                result = machine.run(max_instructions=step, timeout=wall, stops=stops)
                used = machine.instructions - start
                if result.reason in ENDED:
                    self.ended = result
                    return Outcome("met" if done() else "ended", used)
                if result.reason == "timeout":
                    return Outcome("wall", used)
                if done():
                    return Outcome("met", used)
                if self._budget_hit:
                    return Outcome("budget", used)
                if self.tail is not None and self.tail.finished(machine):
                    return Outcome("budget", used)
        finally:
            if timer is not None:
                timer.cancel()

    def _why(self, outcome: Outcome, budget: Budget) -> str:
        used = f"{outcome.instructions:,} instructions"
        if outcome.how == "ended" and self.ended is not None:
            return f"before the guest ended ({describe_exit(self.ended)}, after {used})"
        if outcome.how == "wall":
            return f"before the wall-clock timeout (after {used})"
        return f"within {budget.describe()} (ran {used})"

    # ---- callbacks from the machine ----

    def _on_serial(self, data: bytes) -> None:
        self.byte_insns.extend([self.machine.instructions] * len(data))
        if self._watch is not None and self._search(self._watch):
            self.machine.request_stop("stopped")

    def _on_budget_timer(self) -> None:
        self._budget_hit = True
        self.machine.request_stop("stopped")

    def close(self) -> None:
        if self._release is not None:
            self.machine.serial.out = None
            self._release(self.machine)
        else:
            self.machine.close()


def describe_exit(result: MachineExit) -> str:
    if result.reason == "exit-port":
        return f"exit status {result.status}"
    return f"{result.reason}: {result.detail}" if result.detail else result.reason


class TailRecorder:
    """Records the PCs of the last instructions before ``final`` during a replay.

    Runs plainly up to ``final - margin`` instructions, then attaches a per-instruction
    hook (DESIGN.md principle 6: hooks only while tracing) for the rest."""

    def __init__(self, final: int, keep: int, margin: int = 4096) -> None:
        from collections import deque

        self.final = final
        self.start = max(0, final - max(margin, keep * 4))
        self.pcs: deque[int] = deque(maxlen=keep)
        self._hook: bool | None = None  # None: not yet attached; False: cannot trace
        self._debug: CpuDebug | None = None

    def bound(self, machine: Machine, step: int | None) -> int | None:
        now = machine.instructions
        if self._hook is None and now >= self.start:
            self._attach(machine)
        target = self.final if self._hook is not None else self.start
        left = max(1, target - now)
        return left if step is None else min(step, left)

    def finished(self, machine: Machine) -> bool:
        return machine.instructions >= self.final

    def _attach(self, machine: Machine) -> None:
        # A backend that cannot trace (KVM) leaves the ring empty and the report says so.
        try:
            debug = machine.cpu.debug()
        except DebugUnsupported:
            debug = None
        if debug is None or FEATURE_TRACE not in debug.features:
            self._hook = False
            return
        self._debug = debug
        self._hook = True
        debug.trace_code(self.pcs.append)

    def detach(self) -> None:
        if self._debug is not None:
            self._debug.close()
        self._debug = None
