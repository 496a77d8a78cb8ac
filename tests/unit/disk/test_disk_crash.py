"""kill -9 during `vmm disk convert` and `vmm disk commit` (issue 23).

The process is killed with SIGKILL at seeded random moments, chosen as the N-th file
operation it makes (pwrite, write, fsync, link, rename, replace, unlink), so every run is
reproducible. After each kill: the source chain still opens and reads the same,
``qemu-img check`` passes on it, the destination is either complete or absent, and running
the command again succeeds and leaves no staging folder behind.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, require_tool
from vmm.disk.open import open_disk
from vmm.disk.vmdk.create import create_child, create_vmdk

SECTORS = 4096  # 2 MiB
MOMENTS = 20
DST_TYPES = ["monolithicSparse", "twoGbMaxExtentSparse", "monolithicFlat", "streamOptimized", "raw"]

KILLER = r"""
import os, signal, sys
target = int(sys.argv[1])
seen = 0
def hook(name):
    real = getattr(os, name)
    def op(*args, **kwargs):
        global seen
        seen += 1
        if seen == target:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    setattr(os, name, op)
for name in ("pwrite", "write", "fsync", "link", "rename", "replace", "unlink"):
    hook(name)
from vmm.cli import main
status = main(sys.argv[2:])
print(f"OPS {seen}", file=sys.stderr)
sys.exit(status)
"""


def vmm_killed_at(moment: int, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``vmm ARGV`` and SIGKILL it at its ``moment``-th file operation (0: never)."""
    return subprocess.run(
        [sys.executable, "-c", KILLER, str(moment), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def operations(*argv: str) -> int:
    done = vmm_killed_at(0, *argv)
    assert done.returncode == 0, done.stderr
    return int(done.stderr.rsplit("OPS ", 1)[1])


def fill(path: Path, seed: int) -> bytes:
    rng = random.Random(seed)
    with open_disk(path) as disk:
        for _ in range(12):
            lba = rng.randrange(0, SECTORS - 64)
            disk.write(lba, rng.randbytes(rng.randrange(1, 64) * 512))
        return disk.read(0, SECTORS)


def reads(path: Path) -> bytes:
    with open_disk(path, read_only=True) as disk:
        return disk.read(0, disk.capacity)


def qemu_img_check(qemu_img: str, path: Path) -> None:
    done = subprocess.run([qemu_img, "check", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def leftovers(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


def test_convert_killed_at_random_moments_leaves_the_destination_complete_or_absent(tmp_path):
    qemu_img = require_tool("qemu-img")
    src = tmp_path / "src.vmdk"
    create_vmdk(src, SECTORS, "monolithicSparse", grain_size=16)
    expected = fill(src, 1)
    rng = random.Random(23)
    totals = {}
    for i in range(MOMENTS):
        kind = DST_TYPES[i % len(DST_TYPES)]
        dst = tmp_path / f"dst{i}.{'img' if kind == 'raw' else 'vmdk'}"
        argv = ["disk", "convert", "--type", kind, str(src), str(dst)]
        if kind not in totals:
            probe = tmp_path / f"probe-{kind}.{'img' if kind == 'raw' else 'vmdk'}"
            totals[kind] = operations("disk", "convert", "--type", kind, str(src), str(probe))
        moment = rng.randint(1, totals[kind])
        killed = vmm_killed_at(moment, *argv)
        assert killed.returncode == -9, (moment, killed.stderr)
        assert reads(src) == expected
        qemu_img_check(qemu_img, src)
        existed = os.path.lexists(dst)
        if existed:
            assert reads(dst)[: len(expected)] == expected, f"{kind} killed at {moment}: incomplete destination"
            if kind != "raw":
                qemu_img_check(qemu_img, dst)
        again = vmm_killed_at(0, *argv)  # cleans the staging folder the kill left
        if existed:
            assert again.returncode == 1 and again.stderr.splitlines()[-2].startswith(f"vmm: {dst}: already exists")
        else:
            assert again.returncode == 0, again.stderr
            assert reads(dst)[: len(expected)] == expected
        assert leftovers(tmp_path) == [], f"{kind} killed at {moment}"


def test_commit_killed_at_random_moments_keeps_the_chain_openable(tmp_path):
    qemu_img = require_tool("qemu-img")
    rng = random.Random(2323)
    base, child = tmp_path / "base.vmdk", tmp_path / "child.vmdk"
    create_vmdk(base, SECTORS, "monolithicSparse", grain_size=16)
    fill(base, 2)
    create_child(base, child, grain_size=16)
    expected = fill(child, 3)
    pristine = {path: path.read_bytes() for path in (base, child)}
    total = operations("disk", "commit", str(child))
    for _ in range(MOMENTS):
        for path, data in pristine.items():
            path.write_bytes(data)
        moment = rng.randint(1, total)
        killed = vmm_killed_at(moment, "disk", "commit", str(child))
        assert killed.returncode == -9, (moment, killed.stderr)
        assert reads(child) == expected, f"killed at {moment}"
        qemu_img_check(qemu_img, child)
        qemu_img_check(qemu_img, base)
        again = vmm_killed_at(0, "disk", "commit", str(child))
        assert again.returncode == 0, (moment, again.stderr)
        assert reads(base) == expected and reads(child) == expected


def test_a_stale_convert_between_extents_and_descriptor_is_cleaned(tmp_path):
    kind = "twoGbMaxExtentSparse"
    src = tmp_path / "src.img"
    src.write_bytes(bytes(SECTORS * 512))
    argv = ["disk", "convert", "--type", kind, str(src), str(tmp_path / "d.vmdk")]
    total = operations(*argv)
    os.unlink(tmp_path / "d.vmdk")
    for name in os.listdir(tmp_path):
        if name.startswith("d-"):
            os.unlink(tmp_path / name)
    # The last links happen at the very end: kill just before the descriptor's.
    for moment in range(max(1, total - 4), total + 1):
        killed = vmm_killed_at(moment, *argv)
        assert killed.returncode in (-9, 0)
        existed = (tmp_path / "d.vmdk").exists()
        again = vmm_killed_at(0, *argv)
        assert again.returncode == (1 if existed else 0), again.stderr
        assert leftovers(tmp_path) == []
        for name in os.listdir(tmp_path):
            if name != "src.img":
                os.unlink(tmp_path / name)
