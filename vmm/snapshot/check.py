"""``vmm snapshot check``: is a bundle's snapshot tree whole?

Problems (the bundle is damaged): the .vmsd does not parse; a snapshot's .vmsn does not
parse or its .vmem is missing or of the wrong size; a disk the .vmx or a snapshot names
does not open (missing parent, parentCID that does not match) or fails ``vmm disk check``;
the VM runs on a disk a snapshot froze (writing it would change that snapshot); the
checkpoint the .vmx resumes from does not load. Notes (harmless): files nothing refers to,
which an interrupted operation leaves and the next one removes.
"""

from __future__ import annotations

from pathlib import Path

from vmm.errors import VmmError


def check_bundle(vmx_path: Path) -> tuple[list[str], list[str]]:
    from vmm.disk.vmdk.check import check_disk
    from vmm.snapshot.bundle import BundleSnapshots
    from vmm.snapshot.machinefile import read_machine

    snapshots = BundleSnapshots(vmx_path)
    problems: list[str] = []
    notes: list[str] = []
    try:
        vmx = snapshots.vmx()
        tree = snapshots.tree()
    except VmmError as exc:
        return [str(exc)], notes
    try:
        running = snapshots.disks(vmx, strict=False)
    except VmmError as exc:
        problems.append(str(exc))
        running = []
    frozen = {name for snap in tree.snapshots for _, name in snap.disks}
    for node, name in running:
        if name in frozen:
            problems.append(f"{vmx_path.name}: {node} runs on {name}, which a snapshot froze")
    checked: set[str] = set()
    labelled = [(f"{vmx_path.name} {node}", name) for node, name in running]
    for snap in tree.snapshots:
        labelled += [(f"snapshot {snap.display_name!r} (#{snap.uid}) {node}", name) for node, name in snap.disks]
    for label, name in labelled:
        if name in checked:
            continue
        checked.add(name)
        path = snapshots.folder / name
        if not path.exists():
            problems.append(f"{label}: disk {name} is missing")
            continue
        report = check_disk(path)
        problems += [f"{label}: {error}" for error in report.errors]
    for snap in tree.snapshots:
        try:
            saved = read_machine(snapshots.folder / snap.filename)
        except VmmError as exc:
            problems.append(f"snapshot {snap.display_name!r} (#{snap.uid}): {exc}")
            continue
        if saved.config is not None and saved.memory_size != saved.config.memory_mb << 20:
            problems.append(
                f"{snap.filename}: RAM of {saved.memory_size} bytes, its config says {saved.config.memory_mb} MB"
            )
    vmstate = vmx.get("checkpoint.vmState")
    if vmstate:
        try:
            if not read_machine(snapshots.folder / vmstate).powered_on:
                problems.append(f"{vmx_path.name}: checkpoint.vmState {vmstate} holds no machine state")
        except VmmError as exc:
            problems.append(f"{vmx_path.name}: checkpoint.vmState: {exc}")
    try:
        from vmm.snapshot.bundle import empty_delta

        for path in snapshots.unreferenced():
            if path.suffix == ".vmdk" and not empty_delta(path):
                notes.append(f"{path.name} is not referred to by the .vmx or the .vmsd and holds data: "
                             "remove it by hand if it is not needed")  # fmt: skip
            else:
                notes.append(f"{path.name} is not referred to by the .vmx or the .vmsd (the next operation removes it)")
    except VmmError:
        pass  # already reported as a problem above
    return problems, notes
