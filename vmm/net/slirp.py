"""`--nic user`: QEMU's user-mode network stack, libslirp, behind a vmm NIC.

libslirp (Debian libslirp0) is a TCP/IP stack that plays the guest's whole network: a
gateway at 10.0.2.2 that answers ARP and ICMP echo, a DHCP server that hands out
10.0.2.15 (then .16, ... to further MACs), a DNS forwarder at 10.0.2.3, and NAT: the
guest's TCP and UDP connections become the host's own sockets (10.0.2.2 stands for the
host's loopback). ``hostfwd`` rules listen on host sockets and carry connections into the
guest. It is bound with cffi (csrc/build_slirp.py, csrc/slirp_glue.c); vmm writes no
TCP/IP of its own.

Time: libslirp reads the clock the backend was given (the machine's virtual clock), set
before every call into it, so its TCP timers run in guest time. Everything it answers
itself (ARP, DHCP, ICMP echo of the gateway) happens inside ``send()``, synchronously, so a
run that only does those is deterministic. Host sockets are polled between run slices
(``poll()``) and waited on while the guest idles (vmm/net/hostwait.py); see
docs/design-notes.md, "User-mode networking".
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from vmm.errors import ConfigError
from vmm.net.backend import NetBackend
from vmm.net.slirp_options import UserNetOptions, parse_user_options

MIN_FRAME, MAX_FRAME = 14, 65535 + 14
CONNECTING_POLL_NS = 1_000_000  # a socket waiting to become writable: look again after 1 ms

try:
    from vmm._slirp_ffi import ffi, lib
except ImportError:  # pragma: no cover - a build without libslirp-dev
    ffi = lib = None


def _require_lib() -> None:
    if lib is None:
        raise ConfigError("--nic user needs vmm's libslirp binding (install libslirp-dev and run make)")


if lib is not None:

    @ffi.def_extern()
    def vmm_slirp_send_packet(buf, length, handle):  # noqa: ANN001, ANN202 - cffi callback
        try:
            backend = ffi.from_handle(handle)
            backend._from_slirp(bytes(ffi.buffer(buf, length)))
        except Exception as exc:  # noqa: BLE001 - never unwind into libslirp
            print(f"vmm: user net: frame to the guest lost: {exc}", file=sys.stderr)
        return length

    @ffi.def_extern()
    def vmm_slirp_guest_error(msg, handle):  # noqa: ANN001, ANN202 - cffi callback
        try:
            ffi.from_handle(handle)._guest_error(ffi.string(msg).decode(errors="replace"))
        except Exception:  # noqa: BLE001, S110 - never unwind into libslirp
            pass


def _ip(address) -> int:  # noqa: ANN001 - an ipaddress.IPv4Address
    return int(address)


class SlirpBackend(NetBackend):
    """A NIC's (or a switch uplink's) user-mode NAT on libslirp."""

    kind = "user"
    external = True

    def __init__(self, options: UserNetOptions, name: str = "user",
                 now_ns: Callable[[], int] = time.monotonic_ns) -> None:  # fmt: skip
        super().__init__()
        _require_lib()
        self.options = options
        self.name = name
        self.now_ns = now_ns
        self.stats = {"to_slirp": 0, "from_slirp": 0, "dropped": 0, "guest_errors": 0}
        self.guest_errors: list[str] = []  # the first few messages libslirp gave
        self.forwards: list[tuple[str, str, int, str, int]] = []
        self.notes: list[str] = []
        self._handle = ffi.new_handle(self)
        self._state = ffi.new("struct vmm_slirp *")
        self._timeout = ffi.new("uint32_t *")
        params = ffi.new("struct vmm_slirp_params *")
        params.net = _ip(options.network.network_address)
        params.mask = _ip(options.network.netmask)
        params.host, params.dns, params.dhcp_start = _ip(options.host), _ip(options.dns), _ip(options.dhcp_start)
        params.restricted = int(options.restrict)
        params.ipv6 = int(options.ipv6)
        self._set_clock()
        if lib.vmm_slirp_new(self._state, params, self._handle) != 0:
            raise ConfigError(f"{name}: libslirp refused the network settings ({options.network})")
        self._open = True
        try:
            for rule in options.forwards:
                self._add_forward(rule)
        except ConfigError:
            self.close()
            raise

    # ---- set-up ----

    def _add_forward(self, rule) -> None:  # noqa: ANN001 - a HostForward
        bound = ffi.new("int *")
        err = lib.vmm_slirp_add_hostfwd(self._state, int(rule.proto == "udp"), _ip(rule.host_addr), rule.host_port,
                                        _ip(rule.guest_addr), rule.guest_port, bound)  # fmt: skip
        if err:
            why = os.strerror(err)
            if err == 98:  # EADDRINUSE
                why = "the host port is in use (another program, or another hostfwd, listens there)"
            elif err == 99:  # EADDRNOTAVAIL
                why = f"{rule.host_addr} is not an address of this host"
            elif err == 13:  # EACCES
                why = "permission denied (ports below 1024 need root)"
            raise ConfigError(f"--nic user: hostfwd={rule}: cannot listen on {rule.host_addr}:{rule.host_port}: {why}")
        self.forwards.append((rule.proto, str(rule.host_addr), bound[0], str(rule.guest_addr), rule.guest_port))
        self.notes.append(f"{self.name}: hostfwd {rule.proto} {rule.host_addr}:{bound[0]} -> "
                          f"{rule.guest_addr}:{rule.guest_port}")  # fmt: skip

    def _set_clock(self) -> None:
        self._state.now_ns = self.now_ns()

    # ---- callbacks from libslirp ----

    def _from_slirp(self, frame: bytes) -> None:
        self.stats["from_slirp"] += 1
        self.deliver(frame)

    def _guest_error(self, message: str) -> None:
        self.stats["guest_errors"] += 1
        if len(self.guest_errors) < 16:
            self.guest_errors.append(message)

    # ---- the NetBackend interface ----

    def send(self, frame: bytes) -> None:
        if not self._open or not MIN_FRAME <= len(frame) <= MAX_FRAME:
            self.stats["dropped"] += 1
            return
        self.stats["to_slirp"] += 1
        self._set_clock()
        lib.vmm_slirp_input(self._state, frame, len(frame))

    def fds(self) -> list[int]:
        if not self._open:
            return []
        self._timeout[0] = 0xFFFFFFFF
        count = lib.vmm_slirp_fill(self._state, self._timeout)
        return [self._state.fds[i].fd for i in range(count)]

    def poll(self) -> None:
        if not self._open:
            return
        self._set_clock()
        lib.vmm_slirp_run_timers(self._state)
        lib.vmm_slirp_poll(self._state, 0)

    def timeout_ns(self) -> int | None:
        if not self._open:
            return None
        self._set_clock()
        self._timeout[0] = 0xFFFFFFFF
        count = lib.vmm_slirp_fill(self._state, self._timeout)
        timeout = None if self._timeout[0] == 0xFFFFFFFF else self._timeout[0] * 1_000_000
        timer = lib.vmm_slirp_next_timer_ns(self._state)
        if timer >= 0:
            until = max(0, timer - self._state.now_ns)
            timeout = until if timeout is None else min(timeout, until)
        if any(self._state.fds[i].events & lib.POLLOUT for i in range(count)):
            # fds() lists readable interest only: a connect or a full socket buffer
            # completes as writable, so look again soon.
            timeout = CONNECTING_POLL_NS if timeout is None else min(timeout, CONNECTING_POLL_NS)
        return timeout

    def connection_info(self) -> str:
        """libslirp's table of sockets (protocol, state, host and guest ends)."""
        if not self._open:
            return ""
        text = lib.vmm_slirp_connection_info(self._state)
        try:
            return ffi.string(text).decode(errors="replace")
        finally:
            lib.vmm_slirp_free_str(text)

    def close(self) -> None:
        if getattr(self, "_open", False):
            self._open = False
            lib.vmm_slirp_free(self._state)


def open_user(
    options: dict[str, str], name: str = "user", now_ns: Callable[[], int] = time.monotonic_ns
) -> SlirpBackend:
    """The `user` kind's factory (vmm.net.backend.BACKENDS)."""
    return SlirpBackend(parse_user_options(options), name, now_ns)


def libslirp_version() -> str | None:
    return None if lib is None else ffi.string(lib.vmm_slirp_version()).decode()
