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
