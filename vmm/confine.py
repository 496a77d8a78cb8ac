"""Where the files a bundle or a disk chain names may lead (DESIGN principle 5).

A ``.vmx``, a VMDK descriptor (extent lines, ``parentFileNameHint``) and a bundle's serial
or nvram file are untrusted input: they may name any path. ``FileScope`` is the rule they
all follow: a named file must lie under the scope's folder (its real path, after every
symlink) unless the user named that path (or a folder holding it) on the command line,
and no symlink may lie on the way from the folder to the file unless the user asked for
symlinks to be followed. Files are opened with ``O_NOFOLLOW`` and checked again through
the open descriptor, so a link swapped in between the check and the open is caught too.

Refusals are one line: which file, what it resolves to, and the flag that would allow it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

ALLOW_HINT = "name it with --allow-path to use it"
SYMLINK_HINT = "run with --follow-symlinks to follow it"


class ScopeRefusal(Exception):
    """Why a named file may not be used (the caller wraps it in its own VmmError)."""


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _real(path: str) -> str:
    return os.path.realpath(path)


def printable(text: str | os.PathLike[str]) -> str:
    """``text`` with control bytes escaped, for one-line messages about untrusted names."""
    text = os.fspath(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True)
class FileScope:
    """Files under ``folder``, plus the ``allowed`` paths the user named; symlinks only if asked."""

    folder: str
    allowed: tuple[str, ...] = ()
    follow_symlinks: bool = False
    kind: str = "folder"  # how messages name the folder: "bundle folder", "disk's folder"

    @classmethod
    def of(
        cls,
        folder: str | os.PathLike[str],
        allowed: Iterable[str | os.PathLike[str]] = (),
        follow_symlinks: bool = False,
        kind: str = "folder",
    ) -> FileScope:
        return cls(
            os.path.abspath(os.fspath(folder)),
            tuple(os.path.abspath(os.fspath(p)) for p in allowed),
            follow_symlinks,
            kind,
        )

    def within(self, folder: str | os.PathLike[str], kind: str = "disk's folder") -> FileScope:
        """The same rules around another folder (a disk's own folder)."""
        return FileScope(os.path.abspath(os.fspath(folder)), self.allowed, self.follow_symlinks, kind)

    def _user_named(self, lexical: str, real: str) -> bool:
        return any(_under(lexical, a) or _under(real, _real(a)) for a in self.allowed)

    def check(self, path: str | os.PathLike[str], shown: str | None = None) -> None:
        """Raise ScopeRefusal if ``path`` may not be used (it need not exist yet).

        ``shown``: how the message names the file (default: the path)."""
        shown = shown or printable(path)
        if "\0" in os.fspath(path):
            raise ScopeRefusal(f"{shown} contains a NUL byte: not a file name")
        lexical = os.path.normpath(os.path.abspath(os.fspath(path)))
        real = _real(lexical)
        if self._user_named(lexical, real):
            return
        folder_real = _real(self.folder)
        if not _under(lexical, self.folder) and not _under(lexical, folder_real):
            raise ScopeRefusal(f"{shown} is outside the {self.kind} {printable(self.folder)} ({ALLOW_HINT})")
        if not _under(real, folder_real):
            raise ScopeRefusal(
                f"{shown} leads to {printable(real)}, outside the {self.kind} {printable(self.folder)} ({ALLOW_HINT})"
            )
        if not self.follow_symlinks:
            base = self.folder if _under(lexical, self.folder) else folder_real
            expected = os.path.normpath(os.path.join(folder_real, os.path.relpath(lexical, base)))
            if real != expected:
                raise ScopeRefusal(
                    f"{shown} is a symbolic link (or lies behind one) to {printable(real)}: refused ({SYMLINK_HINT})"
                )

    def open(self, path: str | os.PathLike[str], flags: int, mode: int = 0o666) -> int:
        """``os.open`` under the rule: checked before, opened without following, checked after."""
        self.check(path)
        nofollow = 0 if self.follow_symlinks else os.O_NOFOLLOW
        try:
            fd = os.open(path, flags | nofollow | os.O_CLOEXEC, mode)
        except OSError as exc:
            if exc.errno == 40 and nofollow:  # ELOOP: the last part became a symlink since the check
                raise ScopeRefusal(f"{printable(path)} is a symbolic link: refused ({SYMLINK_HINT})") from None
            raise
        try:
            opened = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return fd  # no /proc: the check before the open stands
        lexical = os.path.normpath(os.path.abspath(os.fspath(path)))
        if not self._user_named(lexical, opened) and not _under(opened, _real(self.folder)):
            os.close(fd)
            raise ScopeRefusal(
                f"{printable(path)} leads to {printable(opened)}, outside the {self.kind} "
                f"{printable(self.folder)} ({ALLOW_HINT})"
            )
        return fd
