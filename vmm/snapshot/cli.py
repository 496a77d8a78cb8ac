"""``vmm snapshot take|list|revert|delete|check VM.vmx [NAME]``.

A running VM (its control socket answers) is asked through its control channel, so the
operation happens between two of its CPU slices; a powered-off VM is changed here, under
the bundle's lock. ``check`` reads only, and exits 3 when the bundle is damaged.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

from vmm.errors import ConfigError

EXIT_DAMAGED = 3


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.description = f"{p.description}. " + (
        "Snapshots of a VM bundle, running or powered off, in VMware's files (NAME.vmsd, "
        "NAME-SnapshotN.vmsn/.vmem, NAME-00000N.vmdk delta disks)."
    )
    p.add_argument("action", choices=["take", "list", "revert", "delete", "check"])
    p.add_argument("vm", help="the bundle: NAME.vmx or its folder")
    p.add_argument("name", nargs="?", help="the snapshot's name (take, revert, delete); #UID names one by uid")
    p.add_argument("--description", default="", help="with take: a description kept in the .vmsd")
    p.set_defaults(func=cmd_snapshot)


def cmd_snapshot(args: argparse.Namespace) -> int:
    from vmm.bundle.config import resolve_bundle

    vmx = Path(os.path.abspath(resolve_bundle(args.vm)))
    if args.action in ("take", "revert", "delete") and not args.name:
        raise ConfigError(f"vmm snapshot {args.action} needs the snapshot's NAME")
    if args.action == "list":
        return _list(vmx)
    if args.action == "check":
        return _check(vmx)
    client = _running(vmx)
    if client is not None:
        with client:
            arguments = {"name": args.name}
            if args.action == "take" and args.description:
                arguments["description"] = args.description
            result = client.execute(f"snapshot-{args.action}", **arguments)
        assert isinstance(result, dict)
        _report(args.action, result.get("name", args.name), result.get("uid"), result, running=True)
        return 0
    from vmm.bundle.lock import VmLock
    from vmm.snapshot.bundle import BundleSnapshots

    with VmLock(vmx):
        snapshots = BundleSnapshots(vmx)
        if args.action == "take":
            taken = snapshots.take(args.name, args.description)
            _report("take", args.name, taken.snapshot.uid, {"disks": taken.deltas}, running=False)
        elif args.action == "revert":
            snap = snapshots.revert(args.name)
            saved = snapshots.saved(snap)
            _report("revert", snap.display_name, snap.uid, {"powered_on": saved.powered_on}, running=False)
        else:
            snap = snapshots.delete(args.name)
            _report("delete", snap.display_name, snap.uid, {}, running=False)
    return 0


def _running(vmx: Path):
    """A client of the VM's control channel when it is running, else None."""
    from vmm.control.client import ControlClient, NotRunning
    from vmm.control.protocol import control_socket

    try:
        return ControlClient.connect(control_socket(vmx))
    except NotRunning:
        return None


def _report(action: str, name: str, uid: object, result: dict, running: bool) -> None:
    state = "running VM" if running else "powered-off VM"
    if action == "take":
        extra = f"; memory {result['memory_bytes']:,} bytes written" if result.get("memory_bytes") else ""
        disks = ", ".join(result.get("disks", []))
        print(f"vmm: took snapshot {name!r} (#{uid}) of the {state}; disks now {disks}{extra}")
    elif action == "revert":
        then = "resumes there at the next vmm run" if not running and result.get("powered_on") else "continues there"
        if not result.get("powered_on", True):
            then = "is powered off (the snapshot was taken powered off)"
        print(f"vmm: reverted to {name!r} (#{uid}); the VM {then}")
    else:
        print(f"vmm: deleted snapshot {name!r} (#{uid})")


def _list(vmx: Path) -> int:
    from vmm.snapshot.bundle import BundleSnapshots

    snapshots = BundleSnapshots(vmx)
    for line in tree_lines(snapshots.tree(), snapshots.suspended() is not None):
        print(line)
    return 0


def tree_lines(tree, suspended: bool = False) -> list[str]:
    """The tree as text, VMware's "You are here" under the snapshot the VM runs on."""
    here = "You are here" + (" (suspended)" if suspended else "")
    if not tree.snapshots:
        return ["(no snapshots)", here]
    lines: list[str] = []

    def describe(snap) -> str:
        when = datetime.datetime.fromtimestamp(snap.create_time_us / 1e6, datetime.UTC)
        return f"{snap.display_name}  #{snap.uid}  {when:%Y-%m-%d %H:%M:%S} UTC"

    def walk(uid: int | None, prefix: str) -> None:
        items: list[str | object] = list(tree.children(uid))
        if tree.current == uid and uid is not None:
            items.append(here)
        for i, item in enumerate(items):
            last = i == len(items) - 1
            branch, down = ("└── ", "    ") if last else ("├── ", "│   ")
            if isinstance(item, str):
                lines.append(prefix + branch + item)
            else:
                lines.append(prefix + branch + describe(item))
                walk(item.uid, prefix + down)

    roots = tree.children(None)
    for root in roots:
        lines.append(describe(root))
        walk(root.uid, "")
    if tree.current is None:
        lines.append(here)
    return lines


def _check(vmx: Path) -> int:
    from vmm.snapshot.check import check_bundle

    problems, notes = check_bundle(vmx)
    for note in notes:
        print(f"vmm: note: {note}")
    for problem in problems:
        print(f"vmm: {problem}", file=sys.stderr)
    if problems:
        print(f"vmm: {vmx}: {len(problems)} problem(s)", file=sys.stderr)
        return EXIT_DAMAGED
    print(f"vmm: {vmx.name}: snapshots, state files and disks are consistent")
    return 0
