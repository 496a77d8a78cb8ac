"""Folding a delta disk into its parent (``vmm disk commit``).

The child's own grains are written into the parent, and the parent gets a new CID (as
VMware gives a committed parent), so the child is re-pinned to it and still reads the same.
Removing the child is left to the caller (snapshot deletion).

Crash safety: the chain opens at every instant, and a commit killed anywhere can simply be
run again. The order is (1) the child notes the parent's coming CID (``ddb.vmm.commitParentCID``,
an atomic descriptor write) — from then on the child accepts the parent with its old CID or
the new one; (2) the data is copied into the parent with its CID unchanged (the child's own
grains hide every sector that changes, so the chain reads the same throughout); (3) the
parent's CID is set, last; (4) the child is pinned to it and the note removed.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from vmm.confine import FileScope
from vmm.disk.vmdk.descriptor import new_cid
from vmm.disk.vmdk.disk import VmdkDisk
from vmm.errors import DiskError

CHUNK_SECTORS = 2048


def commit(
    child_path: str | os.PathLike[str],
    progress: Callable[[int, int], None] | None = None,
    scope: FileScope | None = None,
) -> str:
    """Write the data ``child_path`` holds itself into its parent; returns the parent's path."""
    child_path = os.fspath(child_path)
    child = VmdkDisk(child_path, read_only=False, scope=scope)
    try:
        if child.parent is None:
            raise DiskError(f"{child_path}: not a delta disk (parentCID is ffffffff): nothing to commit into")
        parent_path = child.parent.path
        ranges = list(child.own_ranges())
        total = sum(n for _, n in ranges) or 1
        done = 0
        with VmdkDisk(parent_path, scope=scope) as parent:
            cid = new_cid()
            while cid in (parent.cid, child.descriptor.parent_cid, child.pending_parent_cid):
                cid = new_cid()
            child.begin_commit(cid)  # (1)
            parent.keep_cid()  # (2)
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
            parent.flush()
            parent.set_cid(cid)  # (3)
            parent.flush()
        child.set_parent_cid(cid)  # (4)
        child.flush()
        return parent_path
    finally:
        child.close()
