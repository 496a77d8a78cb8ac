"""Random writes and reads against a bytearray model: sparse, split and delta VMDKs agree with it,
also across close and reopen, and stay consistent for ``check``."""

from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmm.disk.open import open_disk
from vmm.disk.vmdk.check import check_disk
from vmm.disk.vmdk.create import create_child, create_vmdk

SECTOR = 512
CAPACITY = 300  # sectors: with 8-sector grains and 4-entry GTs, many grains and many GTs

operation = st.one_of(
    st.tuples(st.just("write"), st.integers(0, CAPACITY - 1), st.integers(1, 40), st.integers(0, 255)),
    st.tuples(st.just("read"), st.integers(0, CAPACITY - 1), st.integers(1, 60), st.just(0)),
    st.tuples(st.just("reopen"), st.just(0), st.just(0), st.just(0)),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fill(seed: int, sectors: int) -> bytes:
    return bytes((seed + i // 3) & 0xFF for i in range(sectors * SECTOR))


def run(path: str, model: bytearray, ops) -> None:
    disk = open_disk(path)
    try:
        for kind, lba, count, seed in ops:
            count = min(count, CAPACITY - lba)
            if kind == "write":
                data = fill(seed, count)
                disk.write(lba, data)
                model[lba * SECTOR : (lba + count) * SECTOR] = data
            elif kind == "read":
                assert disk.read(lba, count) == model[lba * SECTOR : (lba + count) * SECTOR]
            else:
                disk.close()
                disk = open_disk(path)
        assert disk.read(0, CAPACITY) == model
    finally:
        disk.close()
    report = check_disk(path)
    assert report.ok, report.errors
    assert report.leaked_bytes == 0


@SETTINGS
@given(st.lists(operation, max_size=25))
def test_sparse_matches_model(ops):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "d.vmdk")
        create_vmdk(path, CAPACITY, grain_size=8, gtes_per_gt=4)
        run(path, bytearray(CAPACITY * SECTOR), ops)


@SETTINGS
@given(st.lists(operation, max_size=25))
def test_split_sparse_matches_model(ops):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "d.vmdk")
        create_vmdk(path, CAPACITY, "twoGbMaxExtentSparse", grain_size=8, extent_sectors=64, gtes_per_gt=4)
        run(path, bytearray(CAPACITY * SECTOR), ops)


@SETTINGS
@given(st.lists(operation, max_size=25))
def test_split_flat_matches_model(ops):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "d.vmdk")
        create_vmdk(path, CAPACITY, "twoGbMaxExtentFlat", extent_sectors=70)
        run(path, bytearray(CAPACITY * SECTOR), ops)


@SETTINGS
@given(st.lists(operation.filter(lambda op: op[0] == "write"), max_size=10), st.lists(operation, max_size=25))
def test_delta_matches_model_and_leaves_the_parent_alone(parent_ops, ops):
    with tempfile.TemporaryDirectory() as tmp:
        base, child = os.path.join(tmp, "base.vmdk"), os.path.join(tmp, "base-000001.vmdk")
        create_vmdk(base, CAPACITY, grain_size=16, gtes_per_gt=8)
        model = bytearray(CAPACITY * SECTOR)
        run(base, model, parent_ops)
        frozen = open(base, "rb").read()
        create_child(base, child, grain_size=8, gtes_per_gt=4)
        run(child, model, ops)
        assert open(base, "rb").read() == frozen
