"""The one parser for every size and count a user types.

``--mem 64M``, ``--max-insns 3M``, ``vmm set memsize 128M``, ``vmm disk create F 1G``,
``within = "50M"`` and ``mem = "64M"`` in a ``.vmm.toml`` all read their number here, so
they accept the same spelling and refuse the same mistakes with the same one line:

- a whole or decimal number, ``_`` allowed between digits (``2_000_000``, ``1.5G``);
- an optional suffix K, M, G or T, with an optional ``i``/``B`` (``64M``, ``64MiB``, ``64mb``);
  sizes read it as a power of 1024 (as QEMU and qemu-img do), counts as a power of 1000
  (``3M`` instructions are 3,000,000);
- no sign, no fraction of the smallest unit, nothing above the limit (no silent wrap).
"""

from __future__ import annotations

import re

from vmm.errors import ConfigError, hide_for_vmm_errors

__tracebackhide__ = hide_for_vmm_errors  # a bad value in a test shows the test's line

KIB, MIB, GIB, TIB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
BINARY = {"": 1, "K": KIB, "M": MIB, "G": GIB, "T": TIB}
DECIMAL = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
LIMIT = (1 << 63) - 1  # what the run loop and file offsets hold

_NUMBER = re.compile(r"(?P<sign>[-+]?)(?P<digits>[0-9][0-9_]*(?:\.[0-9_]+)?)(?P<unit>[KMGT]?)(?:I?B)?")


def _parse(text: object, what: str, scale: dict[str, int], default_unit: int, noun: str, limit: int) -> int:
    if isinstance(text, int) and not isinstance(text, bool):
        value, rest, shown = text * default_unit, 0, str(text)
    else:
        shown = str(text).strip()
        match = _NUMBER.fullmatch(shown.upper())
        if match is None or "__" in match["digits"] or match["digits"].endswith("_"):
            raise ConfigError(f"{what}: {shown!r} is not a {noun} (a number with an optional K, M, G or T, "
                              f"e.g. {'64M' if scale is BINARY else '3M'})")  # fmt: skip
        if match["sign"] == "-":
            raise ConfigError(f"{what}: {shown} is negative")
        unit = scale[match["unit"]] if match["unit"] else default_unit
        whole, _, fraction = match["digits"].replace("_", "").partition(".")
        value, rest = divmod(int(whole + fraction) * unit, 10 ** len(fraction))
    if value < 0:
        raise ConfigError(f"{what}: {shown} is negative")
    if rest:
        raise ConfigError(f"{what}: {shown} is not a whole number{' of bytes' if scale is BINARY else ''}")
    if value > limit:
        raise ConfigError(f"{what}: {shown} is too large (at most {limit:,})")
    return value


def parse_size(text: object, what: str = "size", default_unit: int = 1, limit: int = LIMIT) -> int:
    """Bytes from ``"64M"``, ``"1.5G"``, ``"4096"`` (times ``default_unit``) or an int."""
    return _parse(text, what, BINARY, default_unit, "size", limit)


def parse_count(text: object, what: str, limit: int = LIMIT) -> int:
    """A count (instructions, say) from ``"3M"`` (3,000,000), ``"2_000_000"`` or an int."""
    return _parse(text, what, DECIMAL, 1, "count", limit)


def parse_memory_mb(text: object, what: str) -> int:
    """Guest RAM in MiB: ``"64M"``, ``"1G"``, or a plain number of MiB (``"64"``, as .vmx memsize)."""
    size = parse_size(text, what, default_unit=MIB)
    if size % MIB:
        raise ConfigError(f"{what}: {text} is not a whole number of MiB")
    return size // MIB
