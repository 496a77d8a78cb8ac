"""The .vmem writer (sparse, pages never touched skipped unread), the copy-on-write restore
into guest RAM, the checkpoint envelope and the .vmsd tree, each on its own."""

from __future__ import annotations

import random

import pytest

from vmm.errors import ConfigError, ImageError
from vmm.memory import GuestMemory
from vmm.snapshot.checkpoint import Checkpoint, Tag, parse_checkpoint
from vmm.snapshot.vmem import data_runs, map_vmem, write_vmem
from vmm.snapshot.vmsd import Snapshot, SnapshotTree, read_tree

MIB = 1 << 20


def test_vmem_is_sparse_and_restores_copy_on_write(tmp_path):
    memory = GuestMemory(8 * MIB)
    memory.write(0x1000, b"\x01" * 10)
    memory.write(5 * MIB - 1, b"ab")  # a run across a page and a chunk boundary
    memory.read(6 * MIB, 4096)  # read, never written: present (the zero page) but zero
    assert data_runs(memory.view, memory) == [(0x1000, 4096), (5 * MIB - 4096, 8192)]
    assert data_runs(memory.view) == data_runs(memory.view, memory)
    path = tmp_path / "m.vmem"
    assert write_vmem(path, memory) == 3 * 4096
    assert path.stat().st_size == 8 * MIB and path.stat().st_blocks * 512 <= 64 * 1024
    image = bytes(memory.view)
    memory.write(0x1000, b"\x02" * 10)
    map_vmem(path, memory)
    assert bytes(memory.view) == image and memory.backing == str(path)
    memory.write(0x2000, b"xyz")  # copy-on-write: the file does not change
    assert path.read_bytes()[0x2000:0x2003] == b"\0\0\0"
    # RAM mapped from a file: the file's data counts even where the page was never touched.
    again = tmp_path / "again.vmem"
    write_vmem(again, memory)
    assert again.read_bytes() == bytes(memory.view)
    memory.discard(0x1000, 4096)  # the balloon: zeros, not the file's page
    assert memory.read(0x1000, 10) == bytes(10)
    with pytest.raises(Exception, match="bytes, guest RAM is"):
        small = tmp_path / "small.vmem"
        small.write_bytes(b"\0" * 4096)
        map_vmem(small, memory)
    memory.clear()
    assert memory.read(5 * MIB - 1, 2) == b"\0\0" and memory.backing is None
    memory.close()


def test_checkpoint_round_trip_and_fuzz():
    checkpoint = Checkpoint({"Snapshot": [Tag("cfgFile", b"memsize = \"64\"\n")], "memory": [
        Tag("regionsCount", 1), Tag("regionSize", 16384, (0,))]})  # fmt: skip
    data = checkpoint.to_bytes()
    assert data[:4] == bytes.fromhex("d2bed2be")
    parsed = parse_checkpoint(data)
    assert parsed.get("Snapshot", "cfgFile") == b'memsize = "64"\n'
    assert parsed.get("memory", "regionSize", (0,)) == 16384
    rng = random.Random(18)
    for _ in range(3000):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(mutated))
            if rng.random() < 0.7:
                mutated[at] = rng.randrange(256)
            else:
                del mutated[at : at + rng.randint(1, 40)]
        try:
            parse_checkpoint(bytes(mutated))
        except ImageError:
            pass


def test_vmsd_round_trip_and_errors(tmp_path):
    first = Snapshot(1, "vm-Snapshot1.vmsn", "a", None, "", (1 << 40) + 5, [("ide0:0", "vm.vmdk")])
    tree = SnapshotTree([first, Snapshot(3, "vm-Snapshot3.vmsn", 'b|"c"', 1, "d", 7, [])], last_uid=3, current=3)
    path = tmp_path / "vm.vmsd"
    tree.save(path)
    assert read_tree(path) == tree
    assert tree.find('b|"c"').uid == 3 and tree.find("#1").display_name == "a"
    with pytest.raises(ConfigError, match="no snapshot named"):
        tree.find("zz")
    text = path.read_text()
    for bad, message in ((text.replace('snapshot1.parent = "1"', 'snapshot1.parent = "9"'), "not in the tree"),
                         (text.replace('snapshot0.uid = "1"', 'snapshot0.uid = "x"'), "not a number"),
                         (text.replace('snapshot.current = "3"', 'snapshot.current = "2"'), "not in the tree"),
                         (text.replace('snapshot0.filename = "vm-Snapshot1.vmsn"', 'snapshot0.filename = "../x"'),
                          "bundle folder")):  # fmt: skip
        path.write_text(bad)
        with pytest.raises(ConfigError, match=message):
            read_tree(path)
    path.write_text(text.replace('snapshot0.uid = "1"', 'snapshot0.uid = "3"'))
    with pytest.raises(ConfigError, match="appears twice"):
        read_tree(path)
