"""Moved to :mod:`vmm.snapshot.statefile` (machine state files belong with snapshots)."""

from vmm.snapshot.statefile import (
    FORMAT,
    VERSION,
    config_from_dict,
    config_to_dict,
    load_machine_state,
    read_machine_state,
    save_machine_state,
)

__all__ = ["FORMAT", "VERSION", "config_from_dict", "config_to_dict", "load_machine_state",
           "read_machine_state", "save_machine_state"]  # fmt: skip
