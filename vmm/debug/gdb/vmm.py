"""vmm's gdb helpers. In gdb: ``source PATH/vmm.py`` (`vmm run --gdb` prints the path).

``vmm-mode`` makes gdb describe the registers and disassemble as the guest's CPU runs
now: 16-bit in real mode, 32-bit in protected mode, 64-bit in long mode. vmm's stub
always sends one x86-64 register layout (so one connection follows the whole boot);
gdb 13 disassembles as the target description's architecture says, so the helper loads
the description of the same layout for i8086 or i386 (i8086.xml, i386.xml beside this
file) with ``set tdesc filename``, and goes back to vmm's own for 64-bit code.

    vmm-mode            the mode vmm reports (``monitor status``)
    vmm-mode real|16    i8086: ``x/3i $cs*16+$pc`` shows 16-bit code
    vmm-mode protected|32
    vmm-mode long|64
    vmm-mode auto       follow the guest at every stop (a stop hook)
"""

import os
import re

import gdb

HERE = os.path.dirname(os.path.abspath(__file__))
DESCRIPTIONS = {16: "i8086.xml", 32: "i386.xml", 64: None}
NAMES = {"real": 16, "16": 16, "protected": 32, "32": 32, "long": 64, "64": 64}
current = {"bits": 64, "auto": False}


def reported_bits():
    """The code size vmm reports for the CPU now (``[stage] mode real (16-bit) ...``)."""
    text = gdb.execute("monitor status", to_string=True)
    match = re.search(r"\((16|32|64)-bit\)", text)
    return int(match.group(1)) if match else 64


def use(bits):
    if bits == current["bits"]:
        return
    name = DESCRIPTIONS[bits]
    if name is None:
        gdb.execute("set architecture auto", to_string=True)
        gdb.execute("unset tdesc filename", to_string=True)
    else:
        # A 64-bit executable (`gdb kernel.elf`) would make gdb reject a 16/32-bit
        # description; dropping the executable keeps its symbols (the symbol file).
        space = gdb.current_progspace()
        if getattr(space, "executable_filename", None) or space.filename:
            gdb.execute("exec-file", to_string=True)
        gdb.execute("set tdesc filename " + os.path.join(HERE, name), to_string=True)
    current["bits"] = bits


class VmmMode(gdb.Command):
    """Describe registers and disassemble for the guest's mode: vmm-mode [real|protected|long|auto]."""

    def __init__(self):
        super().__init__("vmm-mode", gdb.COMMAND_USER)

    def invoke(self, argument, from_tty):
        word = argument.strip()
        if word == "auto":
            if not current["auto"]:
                gdb.events.stop.connect(on_stop)
                current["auto"] = True
            word = ""
        if word and word not in NAMES:
            raise gdb.GdbError("vmm-mode: expected real, protected, long or auto")
        bits = NAMES[word] if word else reported_bits()
        use(bits)
        print(f"vmm: {bits}-bit registers and disassembly")


def on_stop(_event):
    try:
        use(reported_bits())
    except gdb.error as exc:
        print(f"vmm-mode auto: {exc}")


VmmMode()
