"""Moved to :mod:`vmm.fileio` (the one atomic-write helper, for every writer)."""

from vmm.fileio import atomic_write, fsync_dir

__all__ = ["atomic_write", "fsync_dir"]
