"""``vmm ctl VM COMMAND [ARGS...]``: one command to a running VM's control channel.

``VM`` is a bundle (``NAME.vmx`` or its folder), whose socket is ``NAME.vmx.ctl/monitor.sock``,
or ``--socket PATH`` (a VM started with ``--monitor PATH``). Positional ARGS fill the
command's arguments in order (``snapshot-take NAME``, ``balloon MIB``, ``send-keys KEY...``,
``screenshot FILE``); ``--json '{...}'`` gives them as an object. The reply's ``return``
is printed (``--json-output``: the whole reply line); an error reply is one line and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from vmm.errors import ConfigError

POSITIONAL = {
    "snapshot-take": ("name", "description"), "snapshot-revert": ("name",), "snapshot-delete": ("name",),
    "balloon": ("mib",), "send-keys": ("keys*",), "send": ("text",), "screenshot": ("file",),
}  # fmt: skip
INTEGERS = {"mib", "value"}


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.description = f"{p.description}. " + (
        "Send one command to a running VM: status, pause, continue, snapshot-take NAME, snapshot-revert NAME, "
        "snapshot-delete NAME, snapshot-list, suspend, balloon MIB, send-keys KEY..., send TEXT, "
        "screenshot FILE, quit, query-commands."
    )
    p.add_argument("vm", nargs="?", help="the bundle (NAME.vmx or its folder); or use --socket")
    p.add_argument("command", nargs="?", help="the command (vmm ctl VM query-commands lists them)")
    p.add_argument("args", nargs="*", help="the command's arguments, in order")
    p.add_argument("--socket", metavar="PATH", help="the control socket of a VM run with a socket of its own")
    p.add_argument("--json", metavar="OBJECT", dest="json_arguments", help="the arguments as a JSON object")
    p.add_argument("--json-output", action="store_true", help="print the reply as JSON")
    p.set_defaults(func=cmd_ctl)


def socket_for(vm: str | None, socket_path: str | None) -> Path:
    if socket_path:
        return Path(os.path.abspath(socket_path))
    if not vm:
        raise ConfigError("name the VM (NAME.vmx or its folder) or give --socket PATH")
    from vmm.bundle.config import resolve_bundle
    from vmm.control.protocol import control_socket

    return control_socket(Path(os.path.abspath(resolve_bundle(vm))))


def arguments_for(command: str, args: list[str], json_arguments: str | None) -> dict:
    if json_arguments is not None:
        try:
            result = json.loads(json_arguments)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--json: {exc}") from None
        if not isinstance(result, dict):
            raise ConfigError("--json: give a JSON object")
        return result
    names = POSITIONAL.get(command, ())
    result: dict = {}
    for i, name in enumerate(names):
        if name.endswith("*"):
            result[name[:-1]] = args[i:]
            return result
        if i < len(args):
            result[name] = _value(name, args[i])
    if len(args) > len(names):
        raise ConfigError(f"{command} takes {len(names)} argument(s) ({', '.join(names) or 'none'}), not {len(args)}")
    if command == "screenshot" and "file" in result:
        result["file"] = os.path.abspath(result["file"])
    return result


def _value(name: str, text: str) -> object:
    if name in INTEGERS:
        from vmm.sizes import parse_count

        return parse_count(text, name)
    return text


def cmd_ctl(args: argparse.Namespace) -> int:
    from vmm.control.client import ControlClient

    vm, command, rest = args.vm, args.command, list(args.args)
    if args.socket and vm and command is not None:
        rest.insert(0, command)
        vm, command = None, vm
    elif args.socket and vm and command is None:
        vm, command = None, vm
    if not command:
        raise ConfigError("name a command (status, pause, continue, snapshot-take NAME, ...)")
    path = socket_for(vm, args.socket)
    arguments = arguments_for(command, rest, args.json_arguments)
    with ControlClient.connect(path) as ctl:
        request: dict = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        message = ctl.send_line(json.dumps(request).encode() + b"\n")
    if args.json_output:
        print(json.dumps(message))
        return 1 if "error" in message else 0
    if "error" in message:
        from vmm.control.client import ControlError

        raise ControlError(f"{command}: {message['error'].get('desc')}")
    value = message.get("return")
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                print(item)
            else:
                print(f"{key}: {item if not isinstance(item, list | dict) else json.dumps(item)}")
    elif value not in (None, {}):
        print(json.dumps(value, indent=1))
    return 0
