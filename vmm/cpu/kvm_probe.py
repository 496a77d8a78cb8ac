"""Can this host run vmm on KVM? One answer for ``--accel auto``, ``--accel kvm`` and the
KVM backend itself, with a reason a user can act on.

Checks, in order: vmm's KVM bindings are built (vmm._kvm_ffi, from csrc/build_kvm.py),
``/dev/kvm`` exists and opens read-write, and it speaks KVM API version 12 (the only
stable version since Linux 2.6.22, Documentation/virt/kvm/api.rst section 4.1).
"""

from __future__ import annotations

import errno
import os

from vmm.errors import BackendUnavailable

KVM_DEVICE = "/dev/kvm"
KVM_API_VERSION = 12


def bindings():
    try:
        from vmm import _kvm_ffi
    except ImportError as exc:
        raise BackendUnavailable(
            f"vmm's KVM bindings are not built ({exc}): run `make` (or `pip install -e .`); "
            "building them needs the kernel headers (Debian: linux-libc-dev)"
        ) from None
    return _kvm_ffi.ffi, _kvm_ffi.lib


def open_kvm(device: str | None = None) -> int:
    """Open the KVM device and check its API version; the caller owns the returned fd.

    Raises BackendUnavailable with what is missing and how to get it.
    """
    path = device or KVM_DEVICE
    _ffi, lib = bindings()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise BackendUnavailable(_open_failure(path, exc)) from None
    version = lib.vmm_ioctl_int(fd, lib.KVM_GET_API_VERSION, 0)
    if version != KVM_API_VERSION:
        os.close(fd)
        got = f"error {os.strerror(-version)}" if version < 0 else f"version {version}"
        raise BackendUnavailable(f"{path}: KVM API {got}, vmm needs version {KVM_API_VERSION} (use --accel unicorn)")
    return fd


def _open_failure(path: str, exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return (f"{path} does not exist: load the kvm module (modprobe kvm_intel or kvm_amd) or run on a "
                "host with hardware virtualization enabled; --accel unicorn works anywhere")  # fmt: skip
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (f"{path}: permission denied: add your user to the kvm group "
                "(sudo usermod -aG kvm $USER, then log in again)")  # fmt: skip
    if exc.errno == errno.ENXIO or exc.errno == errno.ENODEV:
        return f"{path}: no KVM behind the device node ({exc.strerror}): is virtualization enabled in the firmware?"
    return f"{path}: cannot open: {exc.strerror}"


def kvm_available(device: str | None = None) -> tuple[bool, str]:
    """(True, "") when KVM can be used, else (False, why and what to do)."""
    try:
        fd = open_kvm(device)
    except BackendUnavailable as exc:
        return False, str(exc)
    os.close(fd)
    return True, ""


_bindings = bindings  # the name the KVM tests call
