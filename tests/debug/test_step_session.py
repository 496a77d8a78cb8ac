"""`vmm step --script` on the toy OS: a class's walk through the boot, checked on the
transcript a user reads."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, require_file

SCRIPT = """\
break 0000:7c00
continue
break mode protected
continue
step 3
break mode long
continue
break kmain
continue
break stage init
continue
stages
"""


def test_script_walks_the_toy_os_boot(tmp_path):
    image = require_file(ROOT / "guests/build/toyos.img", "make -C firmware && make -C guests")
    elf = require_file(ROOT / "guests/build/kernel.elf", "make -C guests")
    script = tmp_path / "boot.vdb"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, "-m", "vmm", "step", str(image), "--symbols", str(elf),
                             "--stage-kernel", str(elf), "--script", str(script)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    blocks = out.split("(vmm) ")
    by_command = {b.splitlines()[0]: b for b in blocks if b}
    assert "pc 0000:7c00 (0x7c00)" in blocks[2] and "[bootloader] mode real (16-bit)" in blocks[2]
    assert "mode real -> protected" in blocks[4]
    assert "mode protected (32-bit)" in by_command["step 3"]
    assert "-> long (#3 mode long)" in blocks[7] and "mode long (64-bit) cpl 0" in blocks[7]
    assert "<kmain>" in blocks[9] and "[kernel]" in blocks[9]
    assert "stage init" in blocks[11] and "cpl 3" in blocks[11]
    stages = [line.split()[1] for line in blocks[12].splitlines()[1:]]
    assert stages == ["firmware", "bootloader", "kernel", "init"]
