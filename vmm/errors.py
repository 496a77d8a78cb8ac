"""The one exception hierarchy of vmm.

The CLI turns every :class:`VmmError` into one line on stderr and a non-zero exit
status; anything else escaping to the top level is a bug in vmm.
"""

from __future__ import annotations


class VmmError(Exception):
    """Base of every error vmm reports to a user."""

    exit_status = 1


class ConfigError(VmmError):
    """A flag, setting or bundle key is missing, malformed or out of range."""

    exit_status = 2


class ImageError(VmmError):
    """A ROM, disk image, kernel or other input file is missing or malformed."""


class KernelError(ImageError):
    """A `--kernel` file (with its initrd and command line) that cannot be booted as
    given: not a kernel vmm knows, a malformed header, or a layout that does not fit.
    Like a bad flag, the run never starts, so the status is 2."""

    exit_status = 2


class DiskError(ImageError):
    """A disk image (raw or VMDK) is unreadable, malformed or inconsistent."""


class DiskIOError(DiskError):
    """The host failed to write (or read) a disk's file: disk full, I/O error, short write.

    The one error the disk layer raises for it; a disk controller (ATA, virtio-blk) turns
    it into its own I/O error status for the guest, and the monitor reports it once.
    """


class CpuError(VmmError):
    """The CPU backend cannot start, or stopped in a way it cannot continue from."""


class BackendUnavailable(CpuError):
    """The requested CPU backend cannot be used on this host (and why)."""


class GuestError(VmmError):
    """The guest did something the machine cannot continue from (reported, not crashed)."""


def hide_for_vmm_errors(excinfo) -> bool:
    """pytest's ``__tracebackhide__`` for the modules a test script calls into (vmm.testing,
    vmm.sizes): a failure vmm reports (ExpectationFailed, any VmmError) shows the test's own
    lines, not vmm's frames; a bug in vmm (any other exception) keeps every frame."""
    return isinstance(excinfo.value, VmmError)
