/* vmm's glue around libslirp (QEMU's user-mode network stack, Debian libslirp0): the
 * callbacks libslirp needs that are plain bookkeeping live here in C, so Python is entered
 * only for frames to the guest and for guest-error messages.
 *
 * - Time: libslirp asks clock_get_ns() whenever it looks at the clock; it gets
 *   s->now_ns, which the Python side sets from the machine's clock before every call
 *   into libslirp (virtual time in a VM: the same run gives the same answers).
 * - Timers: libslirp's timers (the IPv6 router-advertisement timer is the only one in
 *   4.7) are kept in a small table; Python asks for the earliest deadline and calls
 *   vmm_slirp_run_timers() when it has passed.
 * - Polling: slirp_pollfds_fill() lists the host sockets to watch into s->fds (a
 *   struct pollfd array); the caller polls them (here with vmm_slirp_poll(), or with its
 *   own poll over several backends) and vmm_slirp_dispatch() hands the results back.
 *
 * Built by csrc/build_slirp.py into vmm._slirp_ffi.
 */

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <slirp/libslirp.h>

#define VMM_SLIRP_TIMERS 16
#define VMM_SLIRP_MAX_FDS 65536

/* Defined in Python (extern "Python" in build_slirp.py). */
static ssize_t vmm_slirp_send_packet(const void *buf, size_t len, void *handle);
static void vmm_slirp_guest_error(const char *msg, void *handle);

struct vmm_slirp_timer {
    int used;
    int opaque_api;          /* 1: timer_new_opaque (id + cb_opaque), 0: timer_new (cb) */
    SlirpTimerId id;
    SlirpTimerCb cb;
    void *cb_opaque;
    int64_t expire_ms;       /* -1: not armed */
};

struct vmm_slirp_params {
    uint32_t net, mask, host, dhcp_start, dns; /* IPv4 addresses, host byte order */
    int restricted;
    int ipv6;
    int disable_dhcp;
    int disable_dns;
};

struct vmm_slirp {
    Slirp *slirp;
    void *handle;            /* the Python backend (ffi.new_handle) */
    int64_t now_ns;
    struct pollfd *fds;
    int nfds, cap;
    int fd_overflow;         /* add_poll calls refused for lack of room */
    uint64_t guest_errors;
    struct vmm_slirp_timer timers[VMM_SLIRP_TIMERS];
    SlirpCb cb;
    SlirpConfig cfg;
};

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    struct vmm_slirp *s = opaque;
    return vmm_slirp_send_packet(buf, len, s->handle);
}

static void cb_guest_error(const char *msg, void *opaque)
{
    struct vmm_slirp *s = opaque;
    s->guest_errors++;
    vmm_slirp_guest_error(msg, s->handle);
}

static int64_t cb_clock_get_ns(void *opaque)
{
    return ((struct vmm_slirp *)opaque)->now_ns;
}

static struct vmm_slirp_timer *timer_slot(struct vmm_slirp *s)
{
    for (int i = 0; i < VMM_SLIRP_TIMERS; i++) {
        if (!s->timers[i].used) {
            memset(&s->timers[i], 0, sizeof(s->timers[i]));
            s->timers[i].used = 1;
            s->timers[i].expire_ms = -1;
            return &s->timers[i];
        }
    }
    return NULL; /* libslirp 4.7 creates one timer: never reached */
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    struct vmm_slirp_timer *t = timer_slot(opaque);
    if (t) {
        t->cb = cb;
        t->cb_opaque = cb_opaque;
    }
    return t;
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
    struct vmm_slirp_timer *t = timer_slot(opaque);
    if (t) {
        t->opaque_api = 1;
        t->id = id;
        t->cb_opaque = cb_opaque;
    }
    return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
    (void)opaque;
    if (timer)
        ((struct vmm_slirp_timer *)timer)->used = 0;
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    (void)opaque;
    if (timer)
        ((struct vmm_slirp_timer *)timer)->expire_ms = expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque) { (void)fd; (void)opaque; }
static void cb_unregister_poll_fd(int fd, void *opaque) { (void)fd; (void)opaque; }
static void cb_notify(void *opaque) { (void)opaque; }

static int add_poll(int fd, int events, void *opaque)
{
    struct vmm_slirp *s = opaque;
    if (s->nfds == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        struct pollfd *fds;
        if (cap > VMM_SLIRP_MAX_FDS || !(fds = realloc(s->fds, cap * sizeof(*fds)))) {
            s->fd_overflow++;
            return -1;
        }
        s->fds = fds;
        s->cap = cap;
    }
    short want = 0;
    if (events & SLIRP_POLL_IN) want |= POLLIN;
    if (events & SLIRP_POLL_OUT) want |= POLLOUT;
    if (events & SLIRP_POLL_PRI) want |= POLLPRI;
    s->fds[s->nfds].fd = fd;
    s->fds[s->nfds].events = want;
    s->fds[s->nfds].revents = 0;
    return s->nfds++;
}

static int get_revents(int idx, void *opaque)
{
    struct vmm_slirp *s = opaque;
    if (idx < 0 || idx >= s->nfds)
        return 0;
    short got = s->fds[idx].revents;
    int events = 0;
    if (got & POLLIN) events |= SLIRP_POLL_IN;
    if (got & POLLOUT) events |= SLIRP_POLL_OUT;
    if (got & POLLPRI) events |= SLIRP_POLL_PRI;
    if (got & (POLLERR | POLLNVAL)) events |= SLIRP_POLL_ERR;
    if (got & POLLHUP) events |= SLIRP_POLL_HUP;
    return events;
}

static struct in_addr in4(uint32_t host_order)
{
    struct in_addr a;
    a.s_addr = htonl(host_order);
    return a;
}

/* 0, or -1 when libslirp refused the configuration. */
int vmm_slirp_new(struct vmm_slirp *s, const struct vmm_slirp_params *p, void *handle)
{
    memset(s, 0, sizeof(*s));
    s->handle = handle;
    s->cb.send_packet = cb_send_packet;
    s->cb.guest_error = cb_guest_error;
    s->cb.clock_get_ns = cb_clock_get_ns;
    s->cb.timer_new = cb_timer_new;
    s->cb.timer_free = cb_timer_free;
    s->cb.timer_mod = cb_timer_mod;
    s->cb.register_poll_fd = cb_register_poll_fd;
    s->cb.unregister_poll_fd = cb_unregister_poll_fd;
    s->cb.notify = cb_notify;
    s->cb.timer_new_opaque = cb_timer_new_opaque;

    SlirpConfig *c = &s->cfg;
    c->version = 4;
    c->restricted = p->restricted;
    c->in_enabled = true;
    c->vnetwork = in4(p->net);
    c->vnetmask = in4(p->mask);
    c->vhost = in4(p->host);
    c->vdhcp_start = in4(p->dhcp_start);
    c->vnameserver = in4(p->dns);
    c->in6_enabled = p->ipv6 != 0;
    if (c->in6_enabled) { /* QEMU's defaults: fec0::/64, host ::2, DNS ::3 */
        inet_pton(AF_INET6, "fec0::", &c->vprefix_addr6);
        c->vprefix_len = 64;
        inet_pton(AF_INET6, "fec0::2", &c->vhost6);
        inet_pton(AF_INET6, "fec0::3", &c->vnameserver6);
    }
    c->enable_emu = false;
    c->disable_host_loopback = false;
    c->disable_dhcp = p->disable_dhcp != 0;
    c->disable_dns = p->disable_dns != 0;
    s->slirp = slirp_new(c, &s->cb, s);
    return s->slirp ? 0 : -1;
}

void vmm_slirp_free(struct vmm_slirp *s)
{
    if (s->slirp)
        slirp_cleanup(s->slirp);
    s->slirp = NULL;
    free(s->fds);
    s->fds = NULL;
    s->nfds = s->cap = 0;
}

void vmm_slirp_input(struct vmm_slirp *s, const uint8_t *frame, int len)
{
    slirp_input(s->slirp, frame, len);
}

/* The earliest armed timer's deadline in ns, or -1. */
int64_t vmm_slirp_next_timer_ns(struct vmm_slirp *s)
{
    int64_t best = -1;
    for (int i = 0; i < VMM_SLIRP_TIMERS; i++) {
        struct vmm_slirp_timer *t = &s->timers[i];
        if (t->used && t->expire_ms >= 0 && (best < 0 || t->expire_ms < best))
            best = t->expire_ms;
    }
    return best < 0 ? -1 : best * 1000000;
}

/* Fire the timers whose deadline has passed (at s->now_ns); returns how many fired. */
int vmm_slirp_run_timers(struct vmm_slirp *s)
{
    int fired = 0;
    for (int i = 0; i < VMM_SLIRP_TIMERS; i++) {
        struct vmm_slirp_timer *t = &s->timers[i];
        if (!t->used || t->expire_ms < 0 || t->expire_ms * 1000000 > s->now_ns)
            continue;
        t->expire_ms = -1;
        if (t->opaque_api)
            slirp_handle_timer(s->slirp, t->id, t->cb_opaque);
        else if (t->cb)
            t->cb(t->cb_opaque);
        fired++;
    }
    return fired;
}

/* List the host sockets libslirp wants watched into s->fds; returns how many.
 * *timeout_ms comes back as the longest the caller may wait before the next
 * vmm_slirp_dispatch() (libslirp's TCP timers), UINT32_MAX for no limit. */
int vmm_slirp_fill(struct vmm_slirp *s, uint32_t *timeout_ms)
{
    s->nfds = 0;
    slirp_pollfds_fill(s->slirp, timeout_ms, add_poll, s);
    return s->nfds;
}

/* After vmm_slirp_fill() and a poll of s->fds (revents filled in): let libslirp read,
 * write, accept and run its TCP timers. */
void vmm_slirp_dispatch(struct vmm_slirp *s, int poll_error)
{
    slirp_pollfds_poll(s->slirp, poll_error, get_revents, s);
}

/* fill + poll(timeout_ms) + dispatch in one call; returns the number of ready fds. */
int vmm_slirp_poll(struct vmm_slirp *s, int timeout_ms)
{
    uint32_t limit = UINT32_MAX;
    int n = vmm_slirp_fill(s, &limit);
    if (n == 0 && timeout_ms == 0) {
        vmm_slirp_dispatch(s, 0); /* TCP timers only */
        return 0;
    }
    int ready = n ? poll(s->fds, n, timeout_ms) : 0;
    int error = ready < 0 && errno != EINTR;
    if (ready < 0) {
        ready = 0;
        for (int i = 0; i < n; i++)
            s->fds[i].revents = 0;
    }
    vmm_slirp_dispatch(s, error);
    return ready;
}

/* A forward from the host into the guest network. Returns 0 and the port the host
 * socket is bound to in *bound_port (the kernel's choice when host_port is 0), or an
 * errno value (EADDRINUSE, EACCES, EADDRNOTAVAIL...; EINVAL if no socket was found). */
int vmm_slirp_add_hostfwd(struct vmm_slirp *s, int is_udp, uint32_t host_addr, int host_port,
                          uint32_t guest_addr, int guest_port, int *bound_port)
{
    uint32_t limit = UINT32_MAX;
    int before = vmm_slirp_fill(s, &limit);
    int *seen = calloc(before + 1, sizeof(int));
    if (!seen)
        return ENOMEM;
    for (int i = 0; i < before; i++)
        seen[i] = s->fds[i].fd;
    errno = 0;
    int rc = slirp_add_hostfwd(s->slirp, is_udp, in4(host_addr), host_port, in4(guest_addr), guest_port);
    int err = errno ? errno : EINVAL;
    if (rc < 0) {
        free(seen);
        return err;
    }
    *bound_port = host_port;
    /* The new host socket is the fd that was not listed before. */
    int after = vmm_slirp_fill(s, &limit);
    for (int i = 0; i < after; i++) {
        int fd = s->fds[i].fd, old = 0;
        for (int j = 0; j < before; j++)
            old |= seen[j] == fd;
        if (old)
            continue;
        struct sockaddr_in addr;
        socklen_t len = sizeof(addr);
        if (getsockname(fd, (struct sockaddr *)&addr, &len) == 0 && addr.sin_family == AF_INET &&
            addr.sin_addr.s_addr == htonl(host_addr) && (host_port == 0 || ntohs(addr.sin_port) == host_port)) {
            *bound_port = ntohs(addr.sin_port);
            break;
        }
    }
    free(seen);
    s->nfds = 0;
    return 0;
}

int vmm_slirp_remove_hostfwd(struct vmm_slirp *s, int is_udp, uint32_t host_addr, int host_port)
{
    return slirp_remove_hostfwd(s->slirp, is_udp, in4(host_addr), host_port);
}

/* libslirp's own one-line-per-socket summary (the caller frees it with vmm_slirp_free_str). */
char *vmm_slirp_connection_info(struct vmm_slirp *s)
{
    return slirp_connection_info(s->slirp);
}

void vmm_slirp_free_str(char *text)
{
    free(text);
}

const char *vmm_slirp_version(void)
{
    return slirp_version_string();
}
