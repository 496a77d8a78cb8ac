"""Folding a delta disk into its parent (``vmm disk commit``).

The child's own grains are written into the parent; the parent's CID changes with the
first write, so the child is then re-pinned to the parent's new CID and still reads the
same. Removing the child is left to the caller (snapshot deletion).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from vmm.disk.vmdk.disk import VmdkDisk
from vmm.errors import DiskError

CHUNK_SECTORS = 2048


def commit(child_path: str | os.PathLike[str], progress: Callable[[int, int], None] | None = None) -> str:
    """Write the data ``child_path`` holds itself into its parent; returns the parent's path."""
    child_path = os.fspath(child_path)
    child = VmdkDisk(child_path, read_only=False)
    try:
        if child.parent is None:
            raise DiskError(f"{child_path}: not a delta disk (parentCID is ffffffff): nothing to commit into")
        parent_path = child.parent.path
        ranges = list(child.own_ranges())
        total = sum(n for _, n in ranges) or 1
        done = 0
        with VmdkDisk(parent_path) as parent:
            for lba, count in ranges:
                stop = min(lba + count, parent.capacity)
                for start in range(lba, stop, CHUNK_SECTORS):
                    n = min(CHUNK_SECTORS, stop - start)
                    data = child.read(start, n)
                    if parent.read(start, n) != data:
                        parent.write(start, data)
                    done += n
                    if progress:
                        progress(done, total)
            if not parent._cid_refreshed:
                parent.refresh_cid()  # VMware gives a committed parent a new CID even if no byte changed
            parent.flush()
            new_cid = parent.cid
        child.set_parent_cid(new_cid)
        child.flush()
        return parent_path
    finally:
        child.close()

