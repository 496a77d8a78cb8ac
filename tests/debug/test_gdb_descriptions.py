"""The 16/32-bit target descriptions shipped for gdb (vmm/debug/gdb/*.xml) describe the
stub's one register layout byte for byte."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from vmm.debug.gdbregs import LAYOUT, target_xml


def test_shipped_descriptions_are_the_generated_ones():
    for architecture in ("i8086", "i386"):
        shipped = (ROOT / f"vmm/debug/gdb/{architecture}.xml").read_text()
        assert shipped == target_xml(architecture) + "\n"


def test_every_description_covers_the_same_bytes():
    sizes = {sum(int(b) for b in re.findall(r'bitsize="(\d+)"', target_xml(arch)))
             for arch in ("i386:x86-64", "i8086", "i386")}  # fmt: skip
    assert sizes == {sum(reg.bits for reg in LAYOUT)}
