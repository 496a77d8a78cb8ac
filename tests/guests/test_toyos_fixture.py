"""The toy OS driven through the pytest plugin's fixtures (vmm.testing), as a course would."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT

TOYOS = ROOT / "guests" / "build" / "toyos.img"
PROMPT = r"toyos\$ "


@pytest.mark.vm(image="../../guests/build/toyos.img")
def test_boots_through_the_stages_to_the_shell(vm) -> None:
    assert vm.stage == "firmware"
    vm.wait_stage("bootloader", within="1M")
    boot = vm.expect(PROMPT, within="50M")
    assert "kernel: starting /bin/init" in boot
    assert vm.stages == ["firmware", "bootloader", "init"]
    assert "sh: toyos shell" in vm.screen
    assert vm.exit_status is None


@pytest.mark.vm(image="../../guests/build/toyos.img")
def test_echo_ls_and_a_crashing_program(vm) -> None:
    vm.expect(PROMPT, within="50M")
    vm.sendline("echo hello there")
    assert vm.expect(PROMPT, within="1s") == "echo hello there\r\nhello there\r\ntoyos$ "
    vm.sendline("ls")
    listing = vm.expect(PROMPT, within="1s")
    assert "/bin/crash" in listing and "/etc/motd" in listing
    vm.sendline("crash")
    out = vm.expect(PROMPT, within="1s")
    assert "fault: pid 5 (crash): page fault at 0x0 error 0x4 rip 0x" in out
    assert "killed by exception 14" in out
    vm.sendline("echo still here")
    assert "still here" in vm.expect(PROMPT, within="1s")


def test_poweroff_ends_with_status_1(vm_factory) -> None:
    vm = vm_factory(image=TOYOS)
    vm.expect(PROMPT, within="50M")
    vm.sendline("poweroff")
    assert vm.wait_exit(within="1s") == 1
    assert vm.exit_status == 1
    assert vm.serial.endswith("kernel: power off\r\n")


def test_memory_holds_the_boot_sector(vm_factory) -> None:
    vm = vm_factory(image=TOYOS)
    vm.wait_stage("bootloader", within="1M")
    assert vm.memory.read(0x7DFE, 2) == b"\x55\xaa"
    assert vm.memory.read(0x7C00, 512) == TOYOS.read_bytes()[:512]


def test_same_input_same_instruction_counts(vm_factory) -> None:
    counts = []
    for _ in range(2):
        vm = vm_factory(image=TOYOS)
        vm.expect(PROMPT, within="50M")
        vm.sendline("ps")
        vm.expect(PROMPT, within="1s")
        counts.append((vm.instructions, vm.serial))
    assert counts[0] == counts[1]
