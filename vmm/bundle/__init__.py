"""VM bundles: a folder with NAME.vmx (settings), NAME.nvram (firmware settings), disks.

See vmm/bundle/README.md. The pieces: :mod:`.vmx` (VMware's dictionary syntax),
:mod:`.config` (.vmx keys -> MachineConfig), :mod:`.nvram` (vmm's .nvram), :mod:`.lock`
(one monitor per VM), :mod:`.create` and :mod:`.commands` (what the CLI runs), :mod:`.cli`.
"""

from __future__ import annotations

from vmm.bundle.config import BundleConfig, load_bundle, read_bundle, resolve_bundle
from vmm.bundle.create import create_bundle
from vmm.bundle.lock import VmLock, VmLockedError
from vmm.bundle.nvram import Nvram
from vmm.bundle.vmx import VmxFile

__all__ = [
    "BundleConfig",
    "Nvram",
    "VmLock",
    "VmLockedError",
    "VmxFile",
    "create_bundle",
    "load_bundle",
    "read_bundle",
    "resolve_bundle",
]
