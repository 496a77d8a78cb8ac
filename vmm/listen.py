"""TCP endpoints vmm listens on (`--gdb [HOST:]PORT`, `--serial socket:[HOST:]PORT`):
parse the flag once, open the listening socket once, with one kind of error."""

from __future__ import annotations

import socket

from vmm.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"  # only this machine, unless a host is given


def parse_endpoint(text: str, what: str) -> tuple[str, int]:
    """``[HOST:]PORT`` → (host, port); ``what`` names the flag in the error."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not [HOST:]PORT") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"{what}: port {number} is out of range")
    return host or DEFAULT_HOST, number


def listen_tcp(host: str, port: int, error: str, blocking: bool = True) -> socket.socket:
    """A socket listening on host:port for one client at a time (port 0: the kernel picks
    one; ask the socket's getsockname()). ``error`` starts the ConfigError's line."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(1)
    except OSError as exc:
        listener.close()
        raise ConfigError(f"{error}: {exc.strerror}") from None
    listener.setblocking(blocking)
    return listener
