"""What the host could leak into a guest is a machine setting instead: the RTC's time at
power-on (a fixed date unless the user opts into the host's clock) and RDRAND's seed.
The RTC is read as a guest reads it, through ports 0x70/0x71."""

from __future__ import annotations

import calendar
import datetime as dt
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, require_file
from vmm.config import MachineConfig, SerialConfig
from vmm.errors import ConfigError
from vmm.machine import Machine

HELLO = ROOT / "firmware" / "build" / "hello.img"


def rtc_seconds(config: MachineConfig) -> int:
    """The RTC's date and time at power-on, read through the CMOS ports (BCD)."""
    machine = Machine(config)
    try:

        def read(index: int) -> int:
            machine.io.write(0x70, 1, index)
            value = machine.io.read(0x71, 1)
            return (value >> 4) * 10 + (value & 0xF)

        fields = [read(i) for i in (0x32, 0x09, 0x08, 0x07, 0x04, 0x02, 0x00)]  # century ... seconds
    finally:
        machine.close()
    century, year, month, day, hour, minute, second = fields
    return calendar.timegm((century * 100 + year, month, day, hour, minute, second))


def config(**kwargs) -> MachineConfig:
    return MachineConfig(serial=SerialConfig("none"), **kwargs)


def test_the_rtc_starts_at_a_fixed_date_by_default():
    assert rtc_seconds(config()) == calendar.timegm((2026, 1, 1, 0, 0, 0))


def test_the_rtc_base_is_a_machine_setting():
    assert rtc_seconds(config(rtc_base="2031-07-04T12:34:56")) == calendar.timegm((2031, 7, 4, 12, 34, 56))
    # a zone is honoured; the RTC holds UTC
    assert rtc_seconds(config(rtc_base="2031-07-04T12:34:56+02:00")) == calendar.timegm((2031, 7, 4, 10, 34, 56))


@pytest.mark.parametrize("kwargs", [{"rtc_base": "host"}, {"realtime": True}])
def test_host_time_only_when_asked_for(kwargs):
    before = int(time.time())
    seconds = rtc_seconds(config(**kwargs))
    after = int(time.time())
    assert before <= seconds <= after


@pytest.mark.parametrize("base", ["yesterday", "1969-12-31T23:59:59", "2100-01-01"])
def test_a_bad_rtc_base_is_one_clear_error(base):
    with pytest.raises(ConfigError, match="rtc base"):
        config(rtc_base=base).validate()


def test_rng_seed_must_fit_64_bits():
    with pytest.raises(ConfigError, match="64-bit"):
        config(rng_seed=1 << 64).validate()


def test_cli_flags_reach_the_machine_and_bad_ones_give_one_line():
    demo = str(require_file(HELLO))
    ok = subprocess.run([sys.executable, "-m", "vmm", "run", demo, "--rtc-base", "2030-01-01", "--rng-seed", "0x2a"],
                        capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ok.returncode == 1 and "Hello from the boot sector!" in ok.stdout, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "vmm", "run", demo, "--rtc-base", "soon"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "vmm: rtc base 'soon' is neither \"host\" nor an ISO date (e.g. 2026-01-01T00:00:00)"
    ]
    seed = subprocess.run([sys.executable, "-m", "vmm", "run", demo, "--rng-seed", "many"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert seed.returncode == 2
    assert seed.stderr.strip() == "vmm: --rng-seed: 'many' is not a number"


def test_start_time_is_utc_aware():
    from vmm.config import rtc_start_time

    assert rtc_start_time(config()) is None  # the CMOS default, a fixed date
    assert rtc_start_time(config(rtc_base="2030-01-01")) == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
