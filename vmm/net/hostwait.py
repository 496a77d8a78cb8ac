"""Waiting for host network traffic while a guest idles.

A VM whose NIC reaches a host socket (a `vmm switch`, user-mode NAT) idles in host time:
when the guest halts with interrupts on, the run loop waits on the backends' fds for at
most the time to the next virtual timer (and at most ``MAX_WAIT_NS``, so the host side is
serviced), and lets exactly the host time it waited pass in virtual time. A ping from a
peer therefore wakes the guest when it arrives, and an idle guest cannot run ahead of its
peers; a guest that computes still runs at full speed. Runs with only loopback, null or
`vmm lab` NICs never come here and stay deterministic.
"""

from __future__ import annotations

import select
import time

from vmm.net.backend import NetBackend

MAX_WAIT_NS = 50_000_000


def wait_for_traffic(backends: list[NetBackend], max_ns: int) -> int:
    """Wait until a backend has something or ``max_ns`` host ns pass; poll them all; return
    the host ns waited (at most ``max_ns``)."""
    limit = min(max_ns, MAX_WAIT_NS)
    for backend in backends:
        timeout = backend.timeout_ns()
        if timeout is not None:
            limit = min(limit, max(0, timeout))
    fds = [fd for backend in backends for fd in backend.fds()]
    if not fds:
        # No host socket open (a user-net guest that only talks to the virtual gateway,
        # DHCP and ping): nothing can arrive from the host, so the idle is a plain jump of
        # virtual time to the backends' timer or the next deadline, and stays deterministic.
        for backend in backends:
            backend.poll()
        return limit
    start = time.monotonic_ns()
    if limit > 0:
        if fds:
            try:
                select.select(fds, [], [], limit / 1e9)
            except (OSError, ValueError):
                pass  # a backend closed its socket meanwhile: poll() notices
        else:
            time.sleep(limit / 1e9)
    for backend in backends:
        backend.poll()
    return min(max_ns, time.monotonic_ns() - start)


def poll_all(backends: list[NetBackend]) -> None:
    for backend in backends:
        backend.poll()
