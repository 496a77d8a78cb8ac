"""The control channel of a running VM (vmm/control/): QMP-like JSON lines on a UNIX socket
in the bundle, `vmm ctl`, a fuzz of malformed requests, and a second user refused."""

from __future__ import annotations

import json
import os
import random
import socket
import stat
import subprocess
from pathlib import Path

from tests.e2e.snapshot_helpers import TOYOS_BUNDLE, VMM, RunningVm, toyos_bundle, vmm, wait_for
from vmm.control.client import ControlClient, ControlError
from vmm.control.protocol import parse_request
from vmm.control.sockets import connect_unix

NOBODY = 65534


def _status(vmx: Path) -> dict:
    with ControlClient.connect(vmx.parent / f"{vmx.name}.ctl" / "monitor.sock") as ctl:
        return ctl.execute("status")


def test_commands_pause_continue_keys_screenshot_quit(tmp_path):
    vmx = toyos_bundle(tmp_path)
    with RunningVm(vmx) as vm:
        folder = vm.socket.parent
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE(vm.socket.lstat().st_mode) == 0o600
        with ControlClient.connect(vm.socket) as ctl:
            assert "QMP" in ctl.greeting
            wait_for(lambda: b"clock: uptime 5 s" in vm.output(), "the clock service", vm.proc)
            ctl.execute("pause")
            first = ctl.execute("status")
            second = ctl.execute("status")
            assert first["status"] == "paused" and first["instructions"] == second["instructions"]
            assert first["stage"] == "init"
            ctl.execute("continue")
            assert ctl.execute("status")["status"] == "running"
            assert ctl.execute("send-keys", keys=["a", "Enter"])["bytes"] > 0
            shot = ctl.execute("screenshot", file=str(tmp_path / "screen.png"))
            assert (tmp_path / "screen.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert shot["width"] > 0 and isinstance(shot["text"], str)
            try:
                ctl.execute("balloon", mib=8)
            except ControlError as exc:
                assert "balloon needs --machine pc" in str(exc)
            else:
                raise AssertionError("balloon on isapc answered without error")
            try:
                ctl.execute("no-such-command")
            except ControlError as exc:
                assert exc.error_class == "CommandNotFound"
        result = vmm("ctl", vmx, "status")
        assert "status: running" in result.stdout
        bad = vmm("ctl", vmx, "snapshot-take", check=False)
        assert bad.returncode == 1 and "missing argument" in bad.stderr
        vmm("ctl", vmx, "quit")
        code, err = vm.wait()
        assert code == 0, err
        assert "powered off from the control channel" in err
    assert not (vmx.parent / f"{vmx.name}.ctl").exists()


def test_fuzz_malformed_requests_get_error_objects(tmp_path):
    """2,000 seeded malformed lines: each answered by one error object, the VM keeps serving."""
    vmx = toyos_bundle(tmp_path)
    rng = random.Random(18)
    valid = [
        b'{"execute": "status"}',
        b'{"execute": "snapshot-take", "arguments": {"name": "x"}}',
        b'{"execute": "balloon", "arguments": {"mib": 4}}',
        b'{"execute": "send-keys", "arguments": {"keys": ["a"]}}',
    ]
    cases = [b"[" * 100_000, b'{"execute": 1e999999}', b'{"execute": "status", "arguments": []}', b"\xff\xfe{",
             b'{"execute": "send-keys", "arguments": {"keys": [1, 2]}}', b'{"execute": "screenshot", "arguments": '
             b'{"file": "relative.png"}}', b'{"execute": "snapshot-revert", "arguments": {"name": 7}}',
             b'{"execute": "balloon", "arguments": {"mib": true}}', b'"status"', b"null", b"{}" ]  # fmt: skip
    while len(cases) < 2000:
        line = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(3)
            pos = rng.randrange(len(line) + 1)
            if op == 0 and line:
                del line[pos : pos + rng.randint(1, 8)]
            elif op == 1:
                line[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            else:
                line[pos:pos] = rng.choice([b"{", b"}", b'"', b":", b",", b"[", b"]", b"\\u0000", b"-0", b"1e308"])
        line = line.replace(b"\n", b" ")
        try:
            request = parse_request(bytes(line))
        except Exception:
            cases.append(bytes(line))
            continue
        if request.command not in ("status", "balloon", "send-keys"):
            cases.append(bytes(line))  # no take: it would write files on every lucky mutation
    with RunningVm(vmx, "--no-bios-serial") as vm, ControlClient.connect(vm.socket) as ctl:
        ctl.execute("pause")
        answered = 0
        for line in cases:
            reply = ctl.send_line(line + b"\n")
            assert set(reply) <= {"return", "error", "id"}, reply
            if "error" in reply:
                assert set(reply["error"]) == {"class", "desc"}
            answered += 1
        # A line longer than the limit, sent in pieces: one error, then the channel goes on.
        reply = ctl.send_line(b"x" * 200_000 + b"\n")
        assert "error" in reply and "longer" in reply["error"]["desc"]
        assert ctl.execute("status")["status"] == "paused"
        assert answered == len(cases)
        ctl.execute("quit")
        code, err = vm.wait()
        assert code == 0, err


def test_a_second_user_is_refused_by_mode_bits(tmp_path):
    """A process running as `nobody` cannot connect: the folder is 0700, the socket 0600."""
    vmx = toyos_bundle(tmp_path)
    os.chmod(tmp_path, 0o755)
    os.chmod(vmx.parent, 0o755)
    with RunningVm(vmx) as vm:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: become nobody, try to connect, report what happened
            code = 0
            try:
                os.close(read)
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                try:
                    connect_unix(vm.socket, timeout=10).close()
                    message = b"connected"
                except PermissionError:
                    message = b"refused"
                except OSError as exc:
                    message = f"error {exc}".encode()
                os.write(write, message)
            except BaseException:
                code = 1
            os._exit(code)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            message = pipe.read()
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
        assert message == b"refused"
        # The owner still gets in.
        assert _status(vmx)["status"] == "running"


def test_monitor_path_for_a_plain_image(tmp_path):
    """`--monitor PATH` serves the channel for a run that is not a bundle (no snapshots there)."""
    path = tmp_path / "m.sock"
    argv = [*VMM, "run", str(TOYOS_BUNDLE / "toyos.vmdk"), "--serial", "none", "--monitor", str(path)]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(path.exists, "the monitor socket", proc)
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600
        result = vmm("ctl", "--socket", path, "snapshot-take", "x", check=False)
        assert result.returncode == 1 and "need a bundle" in result.stderr
        out = vmm("ctl", "--socket", path, "query-commands", "--json-output").stdout
        assert "snapshot-revert" in out and json.loads(out)["return"]
        vmm("ctl", "--socket", path, "quit")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert not path.exists()


def test_socket_path_longer_than_sun_path(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    vmx = toyos_bundle(deep)
    assert len(str(vmx.parent / f"{vmx.name}.ctl" / "monitor.sock")) > 108
    with RunningVm(vmx, "--no-bios-serial"):
        assert _status(vmx)["status"] == "running"
    sock = socket.socket(socket.AF_UNIX)
    sock.close()
