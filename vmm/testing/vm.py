"""VM: the object a pytest test (or any script) drives a guest through.

    vm = VM.boot(image="guests/build/toyos.img")
    vm.expect(r"toyos\\$ ", within="50M")      # regex on serial; instructions or "5s" virtual
    vm.sendline("echo hi")                     # typed on COM1, then CR
    assert vm.expect(r"toyos\\$ ").startswith("echo hi\\r\\nhi")
    assert vm.stage == "init" and "toyos$" in vm.screen
    vm.sendline("poweroff"); assert vm.wait_exit() == 1

A failed wait raises :class:`~vmm.testing.session.ExpectationFailed` (an AssertionError)
saying what was wanted and how far the guest ran.
"""

from __future__ import annotations

from pathlib import Path

from vmm.config import DiskConfig, MachineConfig
from vmm.errors import ConfigError, hide_for_vmm_errors
from vmm.memory import GuestMemory
from vmm.sizes import parse_memory_mb
from vmm.snapshot.statefile import save_machine_state
from vmm.testing.session import GuestSession
from vmm.testing.spec import DEFAULT_WITHIN, Budget, parse_budget

__tracebackhide__ = hide_for_vmm_errors  # a failed wait shows the test's line, not these frames

Within = int | str | Budget


def budget(within: Within) -> Budget:
    return within if isinstance(within, Budget) else parse_budget(within, "within")


def build_config(image: str | Path | None = None, bundle: str | Path | None = None, bios: str | Path | None = None,
                 mem: str | int | None = None, kernel: str | Path | None = None, append: str | None = None,
                 initrd: str | Path | None = None, accel: str | None = None,
                 disks: list[str | Path] | None = None) -> MachineConfig:  # fmt: skip
    """A MachineConfig from the same keys as an expectation file's [machine] table."""
    if bundle is not None:
        from vmm.bundle.config import load_bundle

        config, _ignored = load_bundle(Path(bundle))
    else:
        config = MachineConfig()
    for disk in ([image] if image is not None else []) + list(disks or []):
        config.disks.append(DiskConfig(f"ide0:{len(config.disks)}", Path(disk)))
    if image is None and bundle is None and kernel is None:
        raise ConfigError("a VM needs an image, a bundle or a kernel")
    config.bios = Path(bios) if bios is not None else config.bios
    config.kernel = Path(kernel) if kernel is not None else config.kernel
    config.initrd = Path(initrd) if initrd is not None else config.initrd
    if append is not None:
        config.append = append
    if mem is not None:
        config.memory_mb = parse_memory_mb(mem, "mem")
    if accel is not None:
        config.accel = accel
    config.serial.kind = "none"
    for path in (config.bios, config.kernel, config.initrd, *(d.path for d in config.disks)):
        if path is not None and not path.exists():
            raise ConfigError(f"{path}: no such file")
    return config.validate()


class VM:
    """One booted guest (powered on, not yet running: the first wait runs it)."""

    def __init__(self, config: MachineConfig, wall_timeout: float | None = 120.0) -> None:
        from vmm.cpu.select import cpu_factory_for

        self.session = GuestSession(config, wall_timeout=wall_timeout, cpu_factory=cpu_factory_for(config.accel))

    @classmethod
    def boot(cls, wall_timeout: float | None = 120.0, **machine: object) -> VM:
        return cls(build_config(**machine), wall_timeout)  # type: ignore[arg-type]

    # ---- waiting ----

    def expect(self, pattern: str, within: Within = DEFAULT_WITHIN) -> str:
        """Run until ``pattern`` matches the serial output after the last match; return that output."""
        start = self.session.mark
        match = self.session.expect(pattern, budget(within))
        return self.session.serial[start : match.end()].decode("latin-1")

    def wait_stage(self, stage: str, within: Within = DEFAULT_WITHIN) -> None:
        self.session.wait_stage(stage, budget(within))

    def wait_exit(self, within: Within = DEFAULT_WITHIN) -> int | str:
        """Run until the guest ends: its exit status, or "halted" / "triple-fault" / "error"."""
        ended = self.session.wait_exit(budget(within))
        return ended.status if ended.reason == "exit-port" else ended.reason

    def wait_screen(self, text: str, within: Within = DEFAULT_WITHIN) -> None:
        self.session.wait_screen(text, budget(within))

    def run(self, within: Within) -> None:
        self.session.run_for(budget(within))

    # ---- input ----

    def send(self, text: str | bytes) -> None:
        self.session.send(text.encode("latin-1") if isinstance(text, str) else text)

    def sendline(self, text: str) -> None:
        self.send(text + "\r")

    # ---- what a test looks at ----

    @property
    def stage(self) -> str | None:
        return self.session.stage

    @property
    def stages(self) -> list[str]:
        return self.session.stages

    @property
    def screen(self) -> str:
        return self.session.screen()

    @property
    def serial(self) -> str:
        return self.session.serial.decode("latin-1")

    @property
    def exit_status(self) -> int | None:
        return self.session.exit_status

    @property
    def memory(self) -> GuestMemory:
        return self.session.machine.memory

    @property
    def instructions(self) -> int:
        return self.session.instructions

    @property
    def time_ns(self) -> int:
        return self.session.time_ns

    @property
    def machine(self):
        return self.session.machine

    def save_state(self, path: str | Path) -> Path:
        return save_machine_state(self.session.machine, path)[0]

    def close(self) -> None:
        self.session.close()
