"""What to say when the BIOS finds nothing to boot (``vmm run`` exits 4).

The BIOS (firmware/boot.S) tries the devices of the CMOS boot order, falls back to every
hard disk, and when none has a boot sector it writes POST code EEh and halts for good,
quietly when ``bios.quiet`` is set. vmm sees that POST code and names what was tried and
why each failed, from the host side: the machine's boot order and its disks.
"""

from __future__ import annotations

POST_NO_BOOT = 0xEE  # firmware/bios.inc: "no bootable disk: halted"
BOOT_SIGNATURE = b"\x55\xaa"  # bytes 510-511 of a boot sector


def boot_failed(machine) -> bool:
    return machine.post.last_code == POST_NO_BOOT


def _why_not(path) -> str:
    from vmm.disk.open import open_disk
    from vmm.errors import VmmError

    try:
        with open_disk(path, read_only=True) as disk:
            sector = disk.read(0, 1)
    except (VmmError, OSError) as exc:
        return f"unreadable ({exc})"
    if sector[510:512] != BOOT_SIGNATURE:
        return "no boot signature 55 AA at byte 510 of sector 0"
    return "its boot sector did not start"


def describe_boot_failure(machine) -> str:
    """``no bootable disk (boot order floppy,hdd): the BIOS tried floppy0 a.img (no boot
    signature ...); ide0:0 x.img (...)``: what the BIOS tried, in its order, and why each
    did not boot (firmware/boot.S: a floppy entry tries drive A:, hdd/hdd1 the hard disks,
    CD-ROM entries are skipped, and the hard disks are tried anyway when none is named)."""
    config = machine.config
    floppies = [d for d in config.disks if d.kind == "floppy"]
    hard_disks = [d for d in config.disks if d.kind == "disk"]
    tried = []
    for name in config.boot_order:
        if name == "floppy":
            tried += [d for d in floppies if d not in tried]
        elif name == "hdd":
            tried += [d for d in hard_disks if d not in tried]
        elif name == "hdd1":
            tried += [d for d in hard_disks[1:2] if d not in tried]
    if not any(name in ("hdd", "hdd1") for name in config.boot_order):
        tried += [d for d in hard_disks if d not in tried]
    text = f"no bootable disk (boot order {','.join(config.boot_order)}"
    skipped = [name for name in config.boot_order if name in ("cdrom", "net")]
    if skipped:
        text += f"; this PC boots no {' or '.join(skipped)}"
    text += ")"
    if not tried:
        return text + ": no disk the BIOS could try is attached"
    return text + ": the BIOS tried " + "; ".join(f"{d.slot} {d.path.name} ({_why_not(d.path)})" for d in tried)
