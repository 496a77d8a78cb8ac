"""Shared test helpers.

Tests that drive an outside tool (qemu-img, qemu-system-x86_64, gdb, /dev/kvm) call
``require_tool`` / ``require_kvm``: without the tool they skip on a developer's machine,
and fail under ``VMM_STRICT=1`` (CI), where ``make`` must have installed everything.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STRICT = os.environ.get("VMM_STRICT") == "1"

# QEMU as a reference that does not depend on the host's speed: its virtual clock counts
# instructions (2**5 ns each, sleep=off: an idle CPU jumps to the next timer deadline) and
# its RTC starts at a fixed date and follows that clock. Without this QEMU's timers follow
# wall time, so a loaded host changes where the guest's timer interrupts land. (QEMU's IDE
# still completes requests on its I/O thread, so instruction counts are not exact.)
QEMU_DETERMINISTIC = ["-icount", "shift=5,sleep=off", "-rtc", "base=2026-01-01T00:00:00,clock=vm"]
# QEMU's isapc always has a drive A: (a 2.88 MB drive when it holds no disk); vmm has one
# only with --floppy. References of a machine without a floppy say so.
QEMU_NO_FLOPPY = ["-global", "isa-fdc.fdtypeA=none"]


def _missing(what: str) -> None:
    if STRICT:
        pytest.fail(f"{what} is missing, and VMM_STRICT=1 makes that a failure", pytrace=False)
    pytest.skip(f"{what} is missing")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        _missing(f"the tool {name!r}")
    return path


def require_kvm() -> None:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        _missing(f"/dev/kvm ({exc.strerror})")
    else:
        os.close(fd)


def require_file(path: Path, how: str = "run make") -> Path:
    if not path.exists():
        _missing(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({how})")
    return path


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked ``fuzz_long`` (many more fuzz cases) run only when ``-m`` names them;
    otherwise they are deselected (not skipped: nothing a user relies on is left out)."""
    if "fuzz_long" in (config.option.markexpr or ""):
        return
    keep = [item for item in items if item.get_closest_marker("fuzz_long") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep
