"""The Unicorn engine as vmm drives it: through the native glue (csrc/uc_engine.c), not
through unicorn's Python binding.

Importing the binding costs ~10 ms of every start (it loads importlib.resources,
zipfile, tempfile... to find its library), a tenth of a whole toy OS boot; vmm's run
needs a handful of calls. The library is the one the binding would load
(``LIBUNICORN_PATH``, else the unicorn package's ``lib/``), and :meth:`Engine.binding`
wraps this same engine in the binding's ``Uc`` for the debugger's Python hooks.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from vmm.cpu.unicorn_state import ffi, lib
from vmm.errors import CpuError

REQUIRED_UNICORN = "2.1.4"
_LIBRARY = "libunicorn.so.2"
_loaded: str | None = None  # the library the glue resolved its symbols in


def library_path() -> str:
    """Where the binding would load libunicorn from, found without importing it."""
    override = os.environ.get("LIBUNICORN_PATH")
    if override and (Path(override) / _LIBRARY).is_file():
        return str(Path(override) / _LIBRARY)
    spec = importlib.util.find_spec("unicorn")
    if spec is None or not spec.submodule_search_locations:
        raise CpuError(f"unicorn {REQUIRED_UNICORN} is not installed: run `make`")
    return str(Path(next(iter(spec.submodule_search_locations))) / "lib" / _LIBRARY)


def _load() -> str:
    global _loaded
    if _loaded is None:
        path = library_path()
        err = ffi.new("char[]", 512)
        if lib.vmm_engine_load(path.encode(), err, 512) != 0:
            raise CpuError(f"unicorn self-check failed: {ffi.string(err).decode()}")
        check_version(lib.vmm_engine_version(), path)
        _loaded = path
    return _loaded


def check_version(version: int, path: str) -> None:
    """``version`` as uc_version() returns it (major << 24 | minor << 16 | patch << 8)."""
    found = f"{version >> 24}.{(version >> 16) & 0xFF}.{(version >> 8) & 0xFF}"
    if found != REQUIRED_UNICORN:
        raise CpuError(
            f"vmm needs unicorn {REQUIRED_UNICORN} (its native glue depends on that version's "
            f"internals), found {found} in {path}: run `make` to install the pinned version"
        )


def describe(status: int) -> str:
    """Unicorn's message for an error status, with its name as the binding prints it."""
    return f"{ffi.string(lib.vmm_engine_strerror(status)).decode()} (UC_ERR {status})"


class Engine:
    """One x86-64 engine (UC_MODE_64, no exit addresses) and the calls vmm makes on it."""

    def __init__(self) -> None:
        self.library = _load()
        out = ffi.new("void **")
        status = lib.vmm_engine_open(out)
        if status != 0:
            raise CpuError(f"unicorn cannot make an x86 engine: {describe(status)}")
        self.handle = out[0]
        self._binding: Any = None
        self._value = ffi.new("uint8_t[16]")  # a register's bytes, in and out
        self._msr = ffi.new("uc_x86_msr *")

    def close(self) -> None:
        if self.handle is not None:
            if self._binding is not None:
                self._binding._uch = None  # the binding must not use the engine after this
            lib.vmm_engine_close(self.handle)
            self.handle = None

    def map_ptr(self, address: int, size: int, host: int) -> int:
        return lib.vmm_engine_map_ptr(self.handle, address, size, ffi.cast("void *", host))

    def unmap(self, address: int, size: int) -> int:
        return lib.vmm_engine_unmap(self.handle, address, size)

    def start(self, begin: int, count: int = 0) -> int:
        """Run from ``begin`` until stopped (or ``count`` instructions, Unicorn's counting
        mode); the status. An exception of a binding hook (the debugger's) is raised."""
        binding = self._binding
        if binding is not None:
            binding._hook_exception = None
        status = lib.vmm_engine_start(self.handle, begin, count)
        if binding is not None and binding._hook_exception is not None:
            raise binding._hook_exception
        return status

    def stop(self) -> None:
        lib.vmm_engine_stop(self.handle)

    def flush_tb(self) -> None:
        lib.vmm_engine_flush_tb(self.handle)

    def block(self, address: int) -> tuple[int, int] | None:
        """(start, instruction count) of the translated block entered at ``address``."""
        pc, icount = ffi.new("uint64_t *"), ffi.new("uint32_t *")
        if lib.vmm_engine_block(self.handle, address, pc, icount) != 0:
            return None
        return pc[0], icount[0]

    def reg_read(self, regid: int, size: int = 8) -> int:
        """A register of ``size`` bytes (8; 16 for XMM) as an unsigned integer."""
        value = self._value
        ffi.memmove(value, bytes(16), 16)
        self._check(lib.vmm_engine_reg_read(self.handle, regid, value), "read", regid)
        return int.from_bytes(ffi.buffer(value, size), "little")

    def reg_write(self, regid: int, number: int, size: int = 8) -> None:
        value = self._value
        ffi.memmove(value, number.to_bytes(size, "little"), size)
        self._check(lib.vmm_engine_reg_write(self.handle, regid, value), "write", regid)

    def float80_read(self, regid: int) -> tuple[int, int]:
        """An x87 register: (64-bit mantissa, 16-bit sign and exponent)."""
        raw = self.reg_read(regid, 10)
        return raw & 0xFFFFFFFFFFFFFFFF, raw >> 64

    def float80_write(self, regid: int, mantissa: int, exponent: int) -> None:
        self.reg_write(regid, mantissa | (exponent & 0xFFFF) << 64, 10)

    def msr_read(self, msr: int) -> int:
        self._msr.rid, self._msr.value = msr, 0
        self._check(lib.vmm_engine_reg_read(self.handle, lib.UC_X86_REG_MSR, self._msr), "read MSR", msr)
        return self._msr.value

    def msr_write(self, msr: int, value: int) -> None:
        self._msr.rid, self._msr.value = msr, value
        self._check(lib.vmm_engine_reg_write(self.handle, lib.UC_X86_REG_MSR, self._msr), "write MSR", msr)

    @staticmethod
    def _check(status: int, what: str, which: int) -> None:
        if status != 0:
            raise CpuError(f"unicorn cannot {what} {which:#x}: {describe(status)}")

    def binding(self) -> Any:
        """This engine as the binding's ``Uc`` (for ``hook_add``, ``mem_protect``...),
        made once. It does not own the engine: it never closes it."""
        if self._binding is None:
            self._binding = _wrap(self)
        return self._binding


def _wrap(engine: Engine) -> Any:
    """The binding's ``Uc`` around ``engine.handle``: what ``Uc.__init__`` sets, without
    its ``uc_open`` and without the finalizer that would close the engine. Checked
    against a ``Uc`` the binding makes itself, and the library it loaded against ours."""
    import unicorn
    from unicorn import unicorn_const as ucc
    from unicorn.unicorn_py3 import unicorn as binding_module
    from unicorn.unicorn_py3.arch.types import uc_engine

    if unicorn.__version__ != REQUIRED_UNICORN:
        raise CpuError(f"vmm's debugger needs the unicorn {REQUIRED_UNICORN} binding, found {unicorn.__version__}")
    loaded = getattr(getattr(binding_module, "uclib", None), "_name", None)
    if not (isinstance(loaded, str) and os.path.exists(loaded) and os.path.samefile(loaded, engine.library)):
        raise CpuError(f"the unicorn binding loaded {loaded}, not vmm's {engine.library} (LIBUNICORN_PATH?)")
    reference = unicorn.Uc(ucc.UC_ARCH_X86, ucc.UC_MODE_64)
    uc = unicorn.Uc.__new__(unicorn.Uc, ucc.UC_ARCH_X86, ucc.UC_MODE_64)
    uc._arch, uc._mode = ucc.UC_ARCH_X86, ucc.UC_MODE_64
    uc._uch = uc_engine(int(ffi.cast("uintptr_t", engine.handle)))
    uc._callbacks = {}
    uc._mmio_callbacks = {}
    uc._hook_exception = None
    expected = {name for name in vars(reference) if not name.endswith("__finalizer")}
    if set(vars(uc)) != expected or type(uc) is not type(reference):
        raise CpuError(f"the unicorn binding's Uc changed (attributes {sorted(expected)}): vmm cannot share its engine")
    return uc
