"""VMware's dictionary syntax (.vmx, .vmsd, .vmtx): read, edit, write back unchanged.

The line grammar is open-vm-tools' ``lib/dict/dictll.c`` (DictLL_UnmarshalLine)::

    <ws> <name> <ws> = <ws> <value> <ws> <comment>
    <ws> <name> <ws> = <ws> " <quoted-value> " <ws> <comment>
    <ws> <name> <ws> = <ws> <comment>            (the value is empty)
    <ws> <comment>

where a name has no whitespace, ``=`` or ``#``; an unquoted value has no whitespace or
``#``; a quoted value has no ``"``; a comment runs from ``#`` to the end of the line.
Values are escaped with ``|`` and two hex digits (``Escape_Undo``: a ``|`` not followed by
two hex digits stays as it is); VMware escapes, when it writes, every control character
but tab, ``"``, ``|`` and 0x7F, in uppercase hex (``DictLL_MarshalLine``).

VMware passes lines it cannot parse to "upper layers"; vmm refuses them instead, with
the file, the line number and what is wrong, since a half-understood settings file is
how a VM boots with the wrong disk.

What is kept, so that loading then saving with no change gives the same bytes: a UTF-8
BOM, the ``.encoding`` (first line; the file is decoded with that codec, undecodable
bytes kept as they are), LF or CRLF per line, a missing final newline, comments, blank
lines, each line's spacing, quoting and escapes, and the original case and order of the
keys. Keys compare case-insensitively. A changed key is rewritten the way VMware writes
it (``name = "value"``, keeping its comment); a new key is appended at the end.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vmm.errors import ConfigError
from vmm.fileio import atomic_write

UTF8_BOM = b"\xef\xbb\xbf"
ESCAPE = "|"
_WS = " \t"
_ESCAPED_HEX = re.compile(rb"\|([0-9A-Fa-f]{2})")


_ASCII_PROBE = '.encoding = "UTF-8"\r\nkey.name_0 = "|22 #"\n'


def _is_ascii_text_encoding(info: codecs.CodecInfo) -> bool:
    """A text encoding that writes a .vmx's ASCII (keys, quotes, newlines) as ASCII, as every
    encoding VMware writes does; refuses byte codecs (zlib, base64, hex, bz2, rot13) and
    UTF-16/32, UTF-7, punycode, idna and the escape codecs (ASCII must also read as itself)."""
    if not getattr(info, "_is_text_encoding", True):
        return False
    ascii_bytes = bytes(range(0x20, 0x7F)) + b"\t\r\n\\u0041"
    try:
        return info.encode(_ASCII_PROBE)[0] == _ASCII_PROBE.encode("ascii") and info.decode(ascii_bytes)[
            0
        ] == ascii_bytes.decode("ascii")
    except (UnicodeError, ValueError, TypeError):
        return False


def _needs_escape(ch: str) -> bool:
    # DictLL_MarshalLine's toEscape table: control characters but tab, '"', '|', DEL.
    code = ord(ch)
    return (code < 0x20 and ch != "\t") or ch in '"|' or code == 0x7F


def escape_value(value: str) -> str:
    """The text VMware writes between the quotes for ``value``."""
    if not any(_needs_escape(ch) for ch in value):
        return value
    return "".join(f"|{ord(ch):02X}" if _needs_escape(ch) else ch for ch in value)


def unescape_value(text: str, encoding: str = "utf-8") -> str:
    """Undo ``|XX`` escapes; escapes form bytes, decoded with the file's encoding."""
    if ESCAPE not in text:
        return text
    raw = text.encode(encoding, "surrogateescape")
    raw = _ESCAPED_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), raw)
    return raw.decode(encoding, "surrogateescape")


def check_key(key: str) -> str:
    """A key as the grammar allows it (non-empty; no whitespace, '=', '#' or '"')."""
    if not key or any(ch in key for ch in ' \t=#"\r\n') or any(ord(ch) < 0x20 for ch in key):
        raise ConfigError(f"bad key {key!r}: a key is a non-empty name without spaces, '=', '#' or '\"'")
    return key


@dataclass
class _Line:
    text: str  # the line as read (or as regenerated), without its line ending
    eol: str  # "\n", "\r\n" or "" (last line without a newline)
    key: str | None = None  # None: a comment or blank line
    value: str = ""  # decoded value
    tail: str = ""  # whitespace and comment after the value, kept when the value changes


class VmxFile:
    """One dictionary file: ordered, case-insensitive keys, written back byte for byte.

    ``name`` is what error messages call the file (its path, or "<vmx>").
    """

    def __init__(self, name: str = "<vmx>", encoding: str = "UTF-8") -> None:
        self.name = name
        self.bom = False
        self.codec = codecs.lookup("utf-8").name
        self.lines: list[_Line] = []
        self._index: dict[str, list[int]] = {}
        if encoding:
            self.lines.append(_Line(f'.encoding = "{encoding}"', "\n", ".encoding", encoding))
            self._reindex()

    # ---- parsing -------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | str) -> VmxFile:
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        return cls.parse(data, str(path))

    @classmethod
    def parse(cls, data: bytes, name: str = "<vmx>") -> VmxFile:
        self = cls(name, encoding="")
        if data.startswith(UTF8_BOM):
            self.bom = True
            data = data[len(UTF8_BOM) :]
        self.codec = self._detect_codec(data)
        text = data.decode(self.codec, "surrogateescape")
        pieces = text.split("\n")
        for number, piece in enumerate(pieces, start=1):
            last = number == len(pieces)
            if last and piece == "":
                break  # the file ended with a newline
            eol = "" if last else "\n"
            if piece.endswith("\r"):
                piece, eol = piece[:-1], "\r" + eol
            self.lines.append(self._parse_line(piece, eol, number))
        self._reindex()
        return self

    def _detect_codec(self, data: bytes) -> str:
        first = data.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
        try:
            line = self._parse_line(first, "", 1)
        except ConfigError:
            return "utf-8"  # the full parse reports it with the right message
        if line.key is None or line.key.lower() != ".encoding":
            return "utf-8"
        try:
            info = codecs.lookup(line.value)
        except (LookupError, ValueError):  # ValueError: a NUL in the name
            raise ConfigError(f"{self.name}:1: unknown .encoding {line.value!r}") from None
        if not _is_ascii_text_encoding(info):
            raise ConfigError(
                f"{self.name}:1: .encoding {line.value!r} is not a text encoding VMware writes "
                "(use UTF-8, or an ASCII-compatible one such as windows-1252)"
            )
        return info.name

    def _parse_line(self, text: str, eol: str, number: int) -> _Line:
        where = f"{self.name}:{number}"
        stripped = text.lstrip(_WS)
        if stripped == "" or stripped.startswith("#"):
            return _Line(text, eol)
        name_end = 0
        while name_end < len(stripped) and stripped[name_end] not in " \t=#":
            name_end += 1
        key = stripped[:name_end]
        rest = stripped[name_end:].lstrip(_WS)
        if not rest.startswith("="):
            if "=" in stripped and not stripped.startswith("="):
                spaced = stripped.split("=", 1)[0].strip()
                if "#" not in spaced:
                    raise ConfigError(f"{where}: key {spaced!r} contains whitespace")
            raise ConfigError(f"{where}: expected 'name = \"value\"', found {text.strip()!r}")
        if not key:
            raise ConfigError(f"{where}: missing key before '='")
        rest = rest[1:].lstrip(_WS)
        if rest.startswith('"'):
            close = rest.find('"', 1)
            if close < 0:
                raise ConfigError(f"{where}: unterminated quoted value for key {key!r}")
            raw_value, tail = rest[1:close], rest[close + 1 :]
        else:
            end = 0
            while end < len(rest) and rest[end] not in " \t#":
                end += 1
            raw_value, tail = rest[:end], rest[end:]
            if '"' in raw_value:
                raise ConfigError(f"{where}: stray '\"' in the value of key {key!r}")
        after = tail.lstrip(_WS)
        if after and not after.startswith("#"):
            raise ConfigError(f"{where}: unexpected text {after!r} after the value of key {key!r}")
        return _Line(text, eol, key, unescape_value(raw_value, self.codec), tail)

    # ---- writing -------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        text = "".join(line.text + line.eol for line in self.lines)
        data = text.encode(self.codec, "surrogateescape")
        return UTF8_BOM + data if self.bom else data

    def save(self, path: Path | str | None = None) -> None:
        """Write atomically to ``path`` (default: the file it was loaded from)."""
        target = Path(path) if path is not None else Path(self.name)
        atomic_write(target, self.to_bytes())
        if path is not None:
            self.name = str(path)

    # ---- the dictionary ------------------------------------------------------------

    def _reindex(self) -> None:
        self._index = {}
        for i, line in enumerate(self.lines):
            if line.key is not None:
                self._index.setdefault(line.key.lower(), []).append(i)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: str) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def get(self, key: str, default: str | None = None) -> str | None:
        """The value of ``key`` (any case); the last one wins when a key repeats, as in VMware."""
        where = self._index.get(key.lower())
        return self.lines[where[-1]].value if where else default

    def keys(self) -> list[str]:
        """Each key once, in file order, spelled as where it last appears."""
        return [self.lines[where[-1]].key for where in self._index.values()]  # type: ignore[misc]

    def items(self) -> list[tuple[str, str]]:
        return [(self.lines[where[-1]].key or "", self.lines[where[-1]].value) for where in self._index.values()]

    def line_of(self, key: str) -> int | None:
        """1-based line number of the (last) line setting ``key``, for error messages."""
        where = self._index.get(key.lower())
        return where[-1] + 1 if where else None

    def where(self, key: str) -> str:
        """``file:line`` for ``key`` (or just the file name if the key is absent)."""
        line = self.line_of(key)
        return f"{self.name}:{line}" if line else self.name

    def duplicates(self) -> list[tuple[str, list[int]]]:
        """Keys set on more than one line: (key, 1-based line numbers)."""
        return [
            (self.lines[where[-1]].key or "", [i + 1 for i in where])
            for where in self._index.values()
            if len(where) > 1
        ]

    def set(self, key: str, value: str) -> None:
        """Set ``key``: in place if present (keeping its spelling and comment), else appended."""
        value = str(value)
        where = self._index.get(key.lower())
        if where:
            line = self.lines[where[-1]]
            if line.value == value:
                return  # unchanged: keep the line byte for byte
            line.value = value
            line.text = f'{line.key} = "{escape_value(value)}"' + (line.tail if line.tail.strip() else "")
            return
        check_key(key)
        eol = self.lines[0].eol if self.lines and self.lines[0].eol else "\n"
        if self.lines and self.lines[-1].eol == "":
            self.lines[-1].eol = eol
        self.lines.append(_Line(f'{key} = "{escape_value(value)}"', eol, key, value))
        self._index[key.lower()] = [len(self.lines) - 1]

    def delete(self, key: str) -> bool:
        """Remove every line setting ``key``; False if it was not there."""
        where = self._index.get(key.lower())
        if not where:
            return False
        for i in reversed(where):
            del self.lines[i]
        self._reindex()
        return True
