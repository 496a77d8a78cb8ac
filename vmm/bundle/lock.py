"""One monitor per VM: the ``NAME.vmx.lck`` lock folder.

Hosted VMware locks a file by making a folder ``<file>.lck/`` holding member files
``[MDE]NNNNN.lck`` (open-vm-tools ``lib/file/fileLockPrimitive.c``). vmm keeps that shape
so either product sees the VM as busy, with a simpler protocol of its own:

- The lock is ``NAME.vmx.lck/`` holding exactly one member ``M<random>.lck`` whose text
  is one line: ``<machineID> <pid> <lamport> X vmm since=<unix time> host=<hostname>``
  (machineID is /etc/machine-id, else the host name; lamport is always 1 as there is
  only ever one member; ``X`` is VMware's letter for an exclusive lock).
- Acquire: build the folder and its member under a temporary name beside it, take an
  ``flock`` on the member and keep it open, then ``rename`` the folder into place. The
  rename is atomic and fails when a non-empty lock folder is already there, so two
  monitors can never both win, and the lock is never seen without its member.
- Held or stale: the holder keeps its ``flock`` for as long as it lives, and the kernel
  drops it when the process dies however it dies (SIGKILL included). A member from this
  host whose ``flock`` can be taken is stale: it is removed (that one member file, then
  the folder if it is empty) and the acquire retried. Where ``flock`` does not work
  (some network file systems) the holder's pid is checked instead. A lock from another
  host, or a member vmm did not write (VMware's), counts as held.
- Release removes the member and the folder, then closes the member (dropping the
  ``flock``). ``VmLock`` is a context manager.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vmm.errors import VmmError

ATTEMPTS = 8


class VmLockedError(VmmError):
    """The VM is already run or edited by another monitor."""


@dataclass
class LockHolder:
    member: Path
    machine_id: str
    pid: int | None
    since: float | None
    host: str
    ours: bool  # written by vmm (else by VMware or someone else)


def machine_id() -> str:
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            text = Path(path).read_text().strip()
            if text:
                return text
    return socket.gethostname() or "localhost"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited and holds nothing
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class VmLock:
    """The lock of one .vmx file (``vmx_path + ".lck"``)."""

    def __init__(self, vmx_path: Path | str) -> None:
        self.vmx_path = Path(vmx_path)
        self.path = self.vmx_path.with_name(self.vmx_path.name + ".lck")
        self._fd: int | None = None
        self._member: Path | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> VmLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # ---- acquire / release ---------------------------------------------------------

    def acquire(self) -> None:
        if self.held:
            return
        folder = self.vmx_path.parent
        for _ in range(ATTEMPTS):
            try:
                tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=folder))
            except OSError as exc:
                raise VmLockedError(f"{self.path}: cannot create the lock: {exc.strerror}") from None
            member_name = f"M{secrets.randbelow(10**10):010d}.lck"
            try:
                fd = self._write_member(tmp / member_name)
            except OSError as exc:  # a full disk: no temp folder is left behind
                shutil.rmtree(tmp, ignore_errors=True)
                raise VmLockedError(f"{self.path}: cannot create the lock: {exc.strerror}") from None
            try:
                os.rename(tmp, self.path)
            except OSError as exc:
                os.close(fd)
                shutil.rmtree(tmp, ignore_errors=True)
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                    raise VmLockedError(f"{self.path}: cannot create the lock: {exc.strerror}") from None
                self._check_existing()
                continue
            self._fd, self._member = fd, self.path / member_name
            return
        raise VmLockedError(f"{self.vmx_path.name}: could not take the lock {self.path} (it keeps changing hands)")

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self._member)  # type: ignore[arg-type]
        with contextlib.suppress(OSError):
            os.rmdir(self.path)
        os.close(self._fd)
        self._fd = self._member = None

    def _write_member(self, member: Path) -> int:
        fd = os.open(member, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            with contextlib.suppress(OSError):  # no flock here: the pid check stands in
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            line = f"{machine_id()} {os.getpid()} 1 X vmm since={int(time.time())} host={socket.gethostname()}\n"
            data = line.encode()
            if os.write(fd, data) != len(data):
                raise OSError(28, os.strerror(28))  # ENOSPC: the member must be whole
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    # ---- who holds it --------------------------------------------------------------

    def holders(self) -> list[LockHolder]:
        """The members of the lock folder as they are now (empty when it is free)."""
        if not self.path.exists():
            return []
        if not self.path.is_dir():
            raise VmLockedError(f"{self.path} exists and is not a lock folder: remove it if no monitor runs this VM")
        found = []
        for member in sorted(self.path.glob("*.lck")):
            try:
                words = member.read_text(errors="replace").split()
            except OSError:
                continue  # removed while we looked
            fields = dict(word.split("=", 1) for word in words if "=" in word)
            pid = int(words[1]) if len(words) > 1 and words[1].isdigit() else None
            since = float(fields["since"]) if fields.get("since", "").isdigit() else None
            found.append(
                LockHolder(
                    member=member,
                    machine_id=words[0] if words else "",
                    pid=pid,
                    since=since,
                    host=fields.get("host", "?"),
                    ours="vmm" in words,
                )
            )
        return found

    def _alive(self, holder: LockHolder) -> bool:
        if not holder.ours or holder.machine_id != machine_id():
            return True
        try:
            fd = os.open(holder.member, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return holder.pid is None or _pid_alive(holder.pid)
        finally:
            os.close(fd)  # also drops the flock if we got it
        return False

    def _check_existing(self) -> None:
        """Raise if a live monitor holds the lock; clear it if it is stale."""
        for holder in self.holders():
            if self._alive(holder):
                raise VmLockedError(self._describe(holder))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(holder.member)
        with contextlib.suppress(OSError):
            os.rmdir(self.path)  # fails harmlessly if someone took it meanwhile

    def _describe(self, holder: LockHolder) -> str:
        name = self.vmx_path.name
        since = f" (since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder.since))})" if holder.since else ""
        if not holder.ours:
            return f"{name} is locked by another program ({holder.member}): remove {self.path} if no VM runs"
        if holder.machine_id != machine_id():
            return f"{name} is in use by vmm process {holder.pid} on host {holder.host}{since}"
        return f"{name} is in use by vmm process {holder.pid}{since}"
