"""UNIX sockets only their owner can reach: a 0600 socket in a 0700 folder.

The socket is bound under a umask of 0177, so it never exists with wider modes (no window
between bind and chmod). A socket path longer than ``sun_path`` (108 bytes: bundles deep in
a tree) is reached through ``/proc/self/fd/N/NAME``, N an open descriptor of its folder.
A stale socket (nobody accepts on it: the VM was killed) is replaced; a live one is refused.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

from vmm.errors import ConfigError

SUN_PATH_MAX = 107


@contextlib.contextmanager
def _short(path: Path) -> Iterator[str]:
    """A name for ``path`` that fits in sun_path (through /proc/self/fd when it does not)."""
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def private_folder(folder: Path) -> None:
    """Make ``folder`` (mode 0700, ours, not a symlink), or check the one that is there."""
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot make the control folder: {exc.strerror}") from None
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise ConfigError(f"{folder}: not a folder owned by this user (refusing to put the control socket there)")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(folder, 0o700)


def connect_unix(path: Path, timeout: float | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with _short(path) as name:
            sock.connect(name)
    except BaseException:
        sock.close()
        raise
    return sock


def listen_unix(path: Path) -> socket.socket:
    """A listening socket at ``path`` (mode 0600); ConfigError if another process serves it."""
    if os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise ConfigError(f"{path}: exists and is not a socket")
        try:
            connect_unix(path, timeout=1.0).close()
        except OSError:
            os.unlink(path)  # stale: nobody is listening
        else:
            raise ConfigError(f"{path}: another vmm serves this control socket")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        with _short(path) as name:
            listener.bind(name)
        os.chmod(path, 0o600)
        listener.listen(8)
    except OSError as exc:
        listener.close()
        raise ConfigError(f"{path}: cannot listen: {exc.strerror}") from None
    finally:
        os.umask(old)
    listener.setblocking(False)
    return listener


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end (SO_PEERCRED)."""
    import struct

    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]
