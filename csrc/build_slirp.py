"""cffi builder for vmm._slirp_ffi, the libslirp binding of vmm/net/slirp.py.

libslirp is QEMU's user-mode network stack as a library (Debian: libslirp0, headers in
libslirp-dev). API mode: csrc/slirp_glue.c holds the callbacks that are bookkeeping
(clock, timers, poll lists); Python gets frames for the guest through the one
``extern "Python"`` callback. Addresses cross the boundary as host-order integers.

Run by setuptools (setup.py's cffi_modules) or by hand: ``python csrc/build_slirp.py``
builds the module in place in vmm/.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
SLIRP_HEADER = Path("/usr/include/slirp/libslirp.h")

CDEF = """
struct pollfd { int fd; short events; short revents; ...; };
#define POLLIN ...
#define POLLOUT ...
#define POLLPRI ...

struct vmm_slirp_params {
    uint32_t net, mask, host, dhcp_start, dns;
    int restricted;
    int ipv6;
    int disable_dhcp;
    int disable_dns;
};

struct vmm_slirp {
    int64_t now_ns;
    struct pollfd *fds;
    int nfds;
    int fd_overflow;
    uint64_t guest_errors;
    ...;
};

extern "Python" ssize_t vmm_slirp_send_packet(const void *buf, size_t len, void *handle);
extern "Python" void vmm_slirp_guest_error(const char *msg, void *handle);

int vmm_slirp_new(struct vmm_slirp *s, const struct vmm_slirp_params *p, void *handle);
void vmm_slirp_free(struct vmm_slirp *s);
void vmm_slirp_input(struct vmm_slirp *s, const uint8_t *frame, int len);
int64_t vmm_slirp_next_timer_ns(struct vmm_slirp *s);
int vmm_slirp_run_timers(struct vmm_slirp *s);
int vmm_slirp_fill(struct vmm_slirp *s, uint32_t *timeout_ms);
void vmm_slirp_dispatch(struct vmm_slirp *s, int poll_error);
int vmm_slirp_poll(struct vmm_slirp *s, int timeout_ms);
int vmm_slirp_add_hostfwd(struct vmm_slirp *s, int is_udp, uint32_t host_addr, int host_port,
                          uint32_t guest_addr, int guest_port, int *bound_port);
int vmm_slirp_remove_hostfwd(struct vmm_slirp *s, int is_udp, uint32_t host_addr, int host_port);
char *vmm_slirp_connection_info(struct vmm_slirp *s);
void vmm_slirp_free_str(char *text);
const char *vmm_slirp_version(void);
"""


def _check_header() -> None:
    if not SLIRP_HEADER.exists():
        raise SystemExit(f"{SLIRP_HEADER} not found: --nic user is built on libslirp (apt-get install libslirp-dev)")


ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "vmm._slirp_ffi",
    '#include "slirp_glue.c"',
    include_dirs=[str(HERE)],
    libraries=["slirp"],
    extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
    depends=[str(HERE / "slirp_glue.c")],
)

if __name__ == "__main__":
    import os

    _check_header()
    os.chdir(HERE.parent)
    ffibuilder.compile(tmpdir=".", verbose=False)
