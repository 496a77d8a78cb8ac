"""The Unicorn glue's calls into Python (csrc/uc_glue.c: ``vmm_py_*``), registered with
cffi's ``def_extern``: exits, not per-instruction work (DESIGN.md principle 6). An
exception in a device model is kept and re-raised by UnicornCpu.run after the engine
stopped, never thrown through the native frames."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmm.cpu.unicorn_state import ffi

if TYPE_CHECKING:
    from vmm.cpu.unicorn import UnicornCpu


def _backend(handle) -> UnicornCpu:
    return ffi.from_handle(handle)


def _fail(cpu: UnicornCpu, exc: BaseException) -> None:
    if cpu._error is None:
        cpu._error = exc
    cpu._engine.stop()


@ffi.def_extern()
def vmm_py_io_in(handle, port, size):
    cpu = _backend(handle)
    try:
        return cpu.platform.io_read(port, size)
    except BaseException as exc:  # noqa: BLE001 - surfaced by run()
        _fail(cpu, exc)
        return 0


@ffi.def_extern()
def vmm_py_io_out(handle, port, size, value):
    cpu = _backend(handle)
    try:
        cpu.platform.io_write(port, size, value)
    except BaseException as exc:  # noqa: BLE001
        _fail(cpu, exc)


@ffi.def_extern()
def vmm_py_mmio_read(handle, addr, size):
    cpu = _backend(handle)
    try:
        return cpu.platform.mmio_read(addr, size)
    except BaseException as exc:  # noqa: BLE001
        _fail(cpu, exc)
        return 0


@ffi.def_extern()
def vmm_py_mmio_write(handle, addr, size, value):
    cpu = _backend(handle)
    try:
        cpu.platform.mmio_write(addr, size, value)
    except BaseException as exc:  # noqa: BLE001
        _fail(cpu, exc)


@ffi.def_extern()
def vmm_py_data_done(handle, moved):
    cpu = _backend(handle)
    try:
        if cpu._data_done is not None:
            cpu._data_done(moved)
    except BaseException as exc:  # noqa: BLE001
        _fail(cpu, exc)


@ffi.def_extern()
def vmm_py_inta(handle):
    cpu = _backend(handle)
    try:
        return cpu.platform.interrupt_acknowledge()
    except BaseException as exc:  # noqa: BLE001
        _fail(cpu, exc)
        return -1
