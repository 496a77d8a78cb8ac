"""The control channel's wire format: QEMU's QMP, one JSON object per line.

The server greets each connection with ``{"QMP": {"version": {...}, "capabilities": []}}``.
A request is ``{"execute": "NAME", "arguments": {...}, "id": ANY}`` (``arguments`` and
``id`` optional); the reply is ``{"return": {...}}`` or ``{"error": {"class": CLASS,
"desc": TEXT}}``, with the request's ``id`` copied when it had one. Classes are QMP's:
``GenericError`` (malformed request, bad argument, a command that failed) and
``CommandNotFound``. Events are sent as ``{"event": NAME, "data": {...}}`` (``STOP``,
``RESUME``, ``SHUTDOWN``, ``SUSPEND``).

Requests are parsed here once, at the edge: a line longer than :data:`MAX_LINE` bytes, bytes
that are not UTF-8, JSON that is not an object, a non-string ``execute`` or non-object
``arguments`` each become one error reply; nothing a client sends raises in the server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

MAX_LINE = 64 * 1024
MAX_CLIENTS = 8
SOCKET_NAME = "monitor.sock"


def control_folder(vmx_path: Path) -> Path:
    """Where a running bundle's socket lives: ``NAME.vmx.ctl/`` beside the .vmx (mode 0700)."""
    return vmx_path.parent / f"{vmx_path.name}.ctl"


def control_socket(vmx_path: Path) -> Path:
    return control_folder(vmx_path) / SOCKET_NAME


class RequestError(Exception):
    """A request the server answers with an error object."""

    def __init__(self, desc: str, error_class: str = "GenericError") -> None:
        super().__init__(desc)
        self.error_class = error_class


@dataclass
class Request:
    command: str
    arguments: dict = field(default_factory=dict)
    id: object = None
    has_id: bool = False


def parse_request(line: bytes) -> Request:
    """One request line, checked; RequestError for anything malformed."""
    if len(line) > MAX_LINE:
        raise RequestError(f"request longer than {MAX_LINE} bytes")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("request is not UTF-8 text") from None
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise RequestError(f"malformed JSON: {exc}") from None
    except ValueError as exc:  # numbers too long to convert, and the like
        raise RequestError(f"malformed JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RequestError(f"a request is a JSON object, not {type(document).__name__}")
    command = document.get("execute")
    if not isinstance(command, str):
        raise RequestError('a request names its command as a string: {"execute": "status"}')
    arguments = document.get("arguments", {})
    if not isinstance(arguments, dict):
        raise RequestError('"arguments" must be a JSON object')
    unknown = set(document) - {"execute", "arguments", "id"}
    if unknown:
        raise RequestError(f"unknown member(s) {', '.join(sorted(map(repr, unknown)))} in the request")
    return Request(command, arguments, document.get("id"), "id" in document)


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(", ", ": ")).encode() + b"\n"


def reply(request: Request | None, value: object) -> bytes:
    message: dict = {"return": value}
    if request is not None and request.has_id:
        message["id"] = request.id
    return encode(message)


def error(request: Request | None, desc: str, error_class: str = "GenericError") -> bytes:
    message: dict = {"error": {"class": error_class, "desc": desc}}
    if request is not None and request.has_id:
        message["id"] = request.id
    return encode(message)


def greeting(version: str) -> bytes:
    return encode({"QMP": {"version": {"vmm": version}, "capabilities": []}})


def event(name: str, data: dict | None = None) -> bytes:
    return encode({"event": name, "data": data or {}})
