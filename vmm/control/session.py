"""What `vmm run` adds around a machine for the control channel and saved state.

- a bundle's run serves ``NAME.vmx.ctl/monitor.sock`` (``--monitor PATH`` elsewhere, or for
  any run), from the run loop's ``poll``;
- a suspended bundle (``checkpoint.vmState`` in its .vmx) resumes where it stopped;
- ``--from-snapshot NAME`` starts a new VM from a snapshot without touching the bundle: its
  disks are the snapshot's, opened read-only under an in-memory delta (vmm.disk.scratch)
  that is thrown away, and it takes no lock (many may run from one snapshot, sharing the
  pages of its .vmem);
- ``--suspend-on-sigterm``: SIGTERM suspends the VM (NAME.vmss + NAME.vmem) instead of
  killing it.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from vmm.errors import ConfigError


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--monitor", metavar="PATH",
                   help="serve the control channel (QMP-like JSON lines; vmm ctl) on this UNIX socket "
                        "(a bundle's run serves NAME.vmx.ctl/monitor.sock by default)")  # fmt: skip
    p.add_argument("--from-snapshot", metavar="NAME",
                   help="with a bundle: start from this snapshot without changing the bundle "
                        "(disk writes go to a throwaway delta)")  # fmt: skip
    p.add_argument(
        "--suspend-on-sigterm",
        action="store_true",
        help="with a bundle: SIGTERM suspends the VM to NAME.vmss + NAME.vmem (vmm run resumes it)",
    )


class RunSession:
    """Built before the machine (it may change the config), started once the machine exists."""

    def __init__(self, args: argparse.Namespace, bundle, config) -> None:
        self.args = args
        self.bundle = bundle
        self.config = config
        self.server = None
        self.snapshots = None
        self.saved = None
        self._old_sigterm = None
        vmx = bundle.vmx_path if bundle is not None else None
        from_snapshot = getattr(args, "from_snapshot", None)
        if (from_snapshot or getattr(args, "suspend_on_sigterm", False)) and vmx is None:
            raise ConfigError("--from-snapshot and --suspend-on-sigterm need a bundle (NAME.vmx)")
        if vmx is None:
            return
        from vmm.snapshot.bundle import BundleSnapshots

        self.snapshots = BundleSnapshots(vmx)
        if from_snapshot:
            snap = self.snapshots.tree().find(from_snapshot)
            self.saved = self.snapshots.saved(snap)
            disks = dict(snap.disks)
            for disk in config.disks:
                if disk.slot in disks:
                    disk.path = self.snapshots.folder / disks[disk.slot]
            config.scratch_disks = True
        else:
            self.saved = self.snapshots.resume_state()

    @property
    def lock_needed(self) -> bool:
        return not getattr(self.args, "from_snapshot", None)

    def start(self, machine, poll):
        """Load the saved state, start the channel; returns the poll the run loop calls."""
        if self.saved is not None:
            from vmm.snapshot.machinefile import load_into

            if not self.saved.powered_on:
                if self.args.from_snapshot:
                    print(f"vmm: snapshot {self.args.from_snapshot!r} was taken powered off: booting its disks",
                          file=sys.stderr)  # fmt: skip
            else:
                load_into(machine, self.saved)
                if not self.args.from_snapshot:
                    self.snapshots.resumed()
                    print(f"vmm: resumed at instruction {machine.instructions:,}", file=sys.stderr, flush=True)
        path = None
        if self.args.monitor:
            path = Path(self.args.monitor)
        elif self.snapshots is not None and not self.args.from_snapshot:
            from vmm.control.protocol import control_socket

            path = control_socket(self.snapshots.vmx_path)
        if path is not None:
            from vmm.control.server import ControlServer

            vmx = self.snapshots.vmx_path if self.snapshots is not None and not self.args.from_snapshot else None
            self.server = ControlServer(machine, path, vmx, inner_poll=poll, private=not self.args.monitor)
            poll = self.server.poll
        if self.args.suspend_on_sigterm:
            if self.server is None or self.server.vmx_path is None:
                raise ConfigError("--suspend-on-sigterm needs the bundle's control channel (not --from-snapshot)")
            server = self.server

            def on_sigterm(signum, frame) -> None:
                # Only a flag: the suspend happens in the run loop's next poll, between two
                # slices. Stopping the CPU here would cut a translated block in the middle
                # (the handler runs inside a port hook), whose instructions were counted
                # whole when it started: the resumed run would count the rest twice.
                server.suspend_requested = True

            self._old_sigterm = signal.signal(signal.SIGTERM, on_sigterm)
        return poll

    def close(self) -> None:
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None
        if self.server is not None:
            self.server.close()
            if self.server.path.parent.name.endswith(".ctl"):
                try:
                    self.server.path.parent.rmdir()
                except OSError:
                    pass
            self.server = None
