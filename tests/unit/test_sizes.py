"""One size/count syntax for every flag and file (vmm.sizes)."""

from __future__ import annotations

import pytest

from vmm.errors import ConfigError
from vmm.sizes import parse_count, parse_memory_mb, parse_size


@pytest.mark.parametrize(
    ("text", "size", "count"),
    [("64M", 64 << 20, 64_000_000), ("1.5G", 3 << 29, 1_500_000_000), ("4096", 4096, 4096),
     ("2_000_000", 2_000_000, 2_000_000), ("64MiB", 64 << 20, 64_000_000), (" 8k ", 8192, 8000), (7, 7, 7)],
)  # fmt: skip
def test_sizes_are_binary_and_counts_decimal(text, size, count):
    assert parse_size(text, "--mem") == size
    assert parse_count(text, "--max-insns") == count


@pytest.mark.parametrize(
    ("text", "message"),
    [("-5", "--max-insns: -5 is negative"), ("lots", "--max-insns: 'lots' is not a count"),
     ("1.0001K", "--max-insns: 1.0001K is not a whole number"), ("1__0", "--max-insns: .1__0. is not a count"),
     ("99999999999T", "--max-insns: 99999999999T is too large"), ("0x10", "--max-insns: .0x10. is not a count")],
)  # fmt: skip
def test_bad_counts_are_one_line(text, message):
    with pytest.raises(ConfigError, match="^" + message):
        parse_count(text, "--max-insns")


def test_memory_is_in_mib_with_or_without_a_unit():
    assert parse_memory_mb("64", "memsize") == 64
    assert parse_memory_mb("1G", "--mem") == 1024
    with pytest.raises(ConfigError, match="not a whole number of MiB"):
        parse_memory_mb("1500K", "--mem")
