"""cffi builder for vmm._uc_glue, the native completion of Unicorn (csrc/uc_glue.c).

Run by setuptools (setup.py: cffi_modules) when vmm is installed, or by hand:
``python csrc/build_uc_glue.py`` builds the module in place. Unicorn's headers come from
the installed unicorn wheel; its functions are resolved at run time with dlsym, so the
module does not link against a particular copy of libunicorn.
"""

from __future__ import annotations

import re
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent


def _unicorn_include() -> str:
    import unicorn

    include = Path(unicorn.__file__).parent / "include"
    if not (include / "unicorn" / "unicorn.h").exists():
        raise SystemExit(f"unicorn headers not found in {include}: install unicorn==2.1.4 from PyPI")
    return str(include)


def _cdef_from_header() -> str:
    text = (HERE / "uc_glue.h").read_text()
    body = text.split("/* CDEF-BEGIN */", 1)[1].split("/* CDEF-END */", 1)[0]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return body


ffibuilder = FFI()
ffibuilder.cdef(_cdef_from_header())
ffibuilder.cdef(
    """
    extern "Python" uint32_t vmm_py_io_in(void *handle, uint32_t port, int size);
    extern "Python" void vmm_py_io_out(void *handle, uint32_t port, int size, uint32_t value);
    extern "Python" uint64_t vmm_py_mmio_read(void *handle, uint64_t addr, int size);
    extern "Python" void vmm_py_mmio_write(void *handle, uint64_t addr, int size, uint64_t value);
    extern "Python" int vmm_py_inta(void *handle);
    extern "Python" void vmm_py_data_done(void *handle, uint32_t moved);
    int vmm_report_core_crashes(void);
    """
)
ffibuilder.set_source(
    "vmm._uc_glue",
    '#include "uc_glue.c"\n#include "crash_report.c"',
    include_dirs=[str(HERE), _unicorn_include()],
    libraries=["dl"],
    extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
    depends=[str(HERE / "uc_glue.c"), str(HERE / "uc_glue.h"), str(HERE / "crash_report.c")],
)

if __name__ == "__main__":
    import os

    os.chdir(HERE.parent)
    ffibuilder.compile(tmpdir=".", verbose=False)
