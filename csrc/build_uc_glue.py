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
# The engine without unicorn's Python binding (csrc/uc_engine.c) and the register ids it
# is read and written with (values from unicorn's x86.h, filled in by the compiler).
ffibuilder.cdef(
    """
    int vmm_engine_load(const char *libunicorn_path, char *err, int errlen);
    unsigned int vmm_engine_version(void);
    const char *vmm_engine_strerror(int status);
    int vmm_engine_open(void **out);
    int vmm_engine_close(void *uc);
    int vmm_engine_map_ptr(void *uc, uint64_t address, uint64_t size, void *host);
    int vmm_engine_unmap(void *uc, uint64_t address, uint64_t size);
    int vmm_engine_start(void *uc, uint64_t begin, uint64_t count);
    int vmm_engine_stop(void *uc);
    int vmm_engine_flush_tb(void *uc);
    int vmm_engine_block(void *uc, uint64_t address, uint64_t *pc, uint32_t *icount);
    int vmm_engine_reg_read(void *uc, int regid, void *value);
    int vmm_engine_reg_write(void *uc, int regid, const void *value);
    typedef enum uc_x86_reg {
        UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
        UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI,
        UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11,
        UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15,
        UC_X86_REG_RFLAGS,
        UC_X86_REG_CR0, UC_X86_REG_CR2, UC_X86_REG_CR3, UC_X86_REG_CR4, UC_X86_REG_CR8,
        UC_X86_REG_DR0, UC_X86_REG_DR1, UC_X86_REG_DR2, UC_X86_REG_DR3,
        UC_X86_REG_DR6, UC_X86_REG_DR7,
        UC_X86_REG_FPCW, UC_X86_REG_FPSW, UC_X86_REG_FPTAG, UC_X86_REG_MXCSR,
        UC_X86_REG_FP0, UC_X86_REG_FP7, UC_X86_REG_XMM0, UC_X86_REG_XMM15,
        UC_X86_REG_MSR,
        ...
    } uc_x86_reg;
    typedef struct uc_x86_msr { uint32_t rid; uint64_t value; ...; } uc_x86_msr;
    """
)
ffibuilder.set_source(
    "vmm._uc_glue",
    '#include "uc_glue.c"\n#include "uc_engine.c"\n#include "crash_report.c"',
    include_dirs=[str(HERE), _unicorn_include()],
    libraries=["dl"],
    extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
    depends=[str(HERE / name) for name in ("uc_glue.c", "uc_glue.h", "uc_engine.c", "crash_report.c")],
)

if __name__ == "__main__":
    import os

    os.chdir(HERE.parent)
    ffibuilder.compile(tmpdir=".", verbose=False)
