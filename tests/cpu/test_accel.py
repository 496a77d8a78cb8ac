"""Backend selection and moving a running machine between backends (issue: KVM backend).

The KVM on vmm's development and CI machines is nested and software-assisted (about a
million instructions per second), so these guests are the small BIOS demo boot."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, require_file, require_kvm
from vmm.config import DiskConfig, MachineConfig, SerialConfig
from vmm.machine import Machine

HELLO = ROOT / "firmware" / "build" / "hello.img"


def demo_config() -> MachineConfig:
    return MachineConfig(disks=[DiskConfig("ide0:0", require_file(HELLO))], serial=SerialConfig("none"))


def boot(switches: list[tuple[int, str]] = ()) -> tuple[str, object]:
    machine = Machine(demo_config())
    try:
        for at, accel in switches:
            machine.run(max_instructions=at)
            machine.switch_cpu(accel)
        result = machine.run(max_instructions=100_000_000)
        return machine.serial_transcript.decode(), result
    finally:
        machine.close()


@pytest.mark.kvm
def test_demo_boot_on_kvm_prints_the_same_as_on_unicorn():
    require_kvm()
    proc = subprocess.run([sys.executable, "-m", "vmm", "run", str(require_file(HELLO)), "--accel", "kvm"],
                          capture_output=True, timeout=120)  # fmt: skip
    uninterrupted, result = boot()
    assert (result.reason, result.status) == ("exit-port", 1)
    assert proc.stdout.decode() == uninterrupted
    assert proc.returncode == 1


@pytest.mark.kvm
def test_mid_boot_switch_unicorn_kvm_unicorn_ends_like_an_uninterrupted_run():
    require_kvm()
    uninterrupted, _ = boot()
    # Leave Unicorn in the middle of POST, come back from KVM inside the boot sector.
    switched, result = boot([(9_000, "kvm"), (150_000, "unicorn")])
    assert (result.reason, result.status) == ("exit-port", 1)
    assert switched == uninterrupted
    assert "Hello from the boot sector!" in switched


def test_auto_says_which_backend_it_chose_and_why():
    proc = subprocess.run([sys.executable, "-m", "vmm", "run", str(require_file(HELLO)), "--accel", "auto"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    line = [x for x in proc.stderr.splitlines() if "--accel auto chose" in x]
    assert len(line) == 1, proc.stderr
    assert "instructions/s" in line[0]
    assert "Hello from the boot sector!" in proc.stdout


def test_kvm_missing_gives_one_clear_line(monkeypatch, tmp_path):
    from vmm.cpu import kvm_probe
    from vmm.errors import BackendUnavailable

    monkeypatch.setattr(kvm_probe, "KVM_DEVICE", str(tmp_path / "kvm"))
    from vmm.cpu.select import cpu_factory_for

    with pytest.raises(BackendUnavailable, match="does not exist: load the kvm module"):
        cpu_factory_for("kvm")


@pytest.mark.kvm
def test_toy_os_on_kvm_prints_the_same_as_on_unicorn_up_to_user_mode():
    """BIOS, boot sector, protected and long mode and the kernel's start-up, identical on
    both backends. The comparison stops where the kernel starts init: the nested,
    software-assisted KVM of vmm's development and CI machines enters SYSCALL's LSTAR
    without leaving CPL 3 (a host defect, shown by tests/cpu/test_kvm_backend.py's
    author with a small guest), so init cannot run there."""
    require_kvm()
    from vmm.cpu.select import cpu_factory_for

    image = require_file(ROOT / "guests" / "build" / "toyos.img")
    marker = b"kernel: starting /bin/init"
    transcripts = []
    for factory in (cpu_factory_for("kvm"), None):
        config = MachineConfig(disks=[DiskConfig("ide0:0", image)], serial=SerialConfig("none"))
        machine = Machine(config, cpu_factory=factory)

        def stop_at_marker(machine: Machine = machine) -> None:
            if marker in machine.serial_transcript:
                machine.request_stop("marker")

        try:
            # KVM's instruction count follows host time, so on a loaded host a budget in
            # instructions is a budget in seconds: the run ends at the marker instead,
            # with a wall-clock safety net (Unicorn keeps its instruction budget).
            machine.run(max_instructions=None if factory else 500_000_000, timeout=300, poll=stop_at_marker)
            transcripts.append(bytes(machine.serial_transcript))
        finally:
            machine.close()
    kvm, unicorn = transcripts
    assert marker in unicorn and marker in kvm
    # Each run stops at a slice boundary after the marker, and KVM's instruction counts
    # follow host time, so what follows the marker is cut at a different byte each time:
    # both transcripts are compared up to the end of the marker.
    assert kvm[: kvm.index(marker) + len(marker)] == unicorn[: unicorn.index(marker) + len(marker)]


@pytest.mark.kvm
@pytest.mark.parametrize("program", ["time", "keyboard"])
def test_in_kernel_irqchip_runs_the_bios_programs_alike(program, tmp_path):
    """--irqchip kernel: KVM's own PIC, PIT and IOAPIC answer the ports and take the
    device lines (KVM_IRQ_LINE); the BIOS's timer ticks and serial input still work."""
    require_kvm()
    from tests.bios.build import build_boot_image
    from tests.bios.test_bios_qemu import SERIAL_INPUT
    from tests.bios.test_bios_vmm import EXPECTED, READY_FOR_INPUT, as_text
    from vmm.cpu.select import cpu_factory_for

    image = build_boot_image(program, tmp_path)
    config = MachineConfig(disks=[DiskConfig("ide0:0", image)], serial=SerialConfig("none"), accel="kvm",
                           irqchip="kernel")  # fmt: skip
    machine = Machine(config, cpu_factory=cpu_factory_for("kvm", irqchip="kernel"))
    pending = [SERIAL_INPUT[program]] if program in SERIAL_INPUT else []

    def type_when_ready() -> None:
        if pending and READY_FOR_INPUT.get(program, b"") in machine.serial_transcript:
            machine.send(pending.pop())

    try:
        assert machine.io.device_at(0x20) is None  # KVM answers the PIC ports itself
        result = machine.run(timeout=60, poll=type_when_ready)
        serial = bytes(machine.serial_transcript)
    finally:
        machine.close()
    assert as_text(serial) == (EXPECTED / f"{program}.txt").read_text(encoding="latin-1")
    assert (result.reason, result.status) == ("exit-port", 1)


def test_in_kernel_irqchip_needs_kvm():
    proc = subprocess.run([sys.executable, "-m", "vmm", "run", str(require_file(HELLO)), "--irqchip", "kernel"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == "vmm: the in-kernel irqchip needs --accel kvm"
