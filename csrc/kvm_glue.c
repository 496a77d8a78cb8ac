/* vmm: the small native part of the KVM backend (vmm/cpu/kvm.py).
 *
 * Python issues the ioctls and handles every exit; this file only does what Python
 * cannot do well:
 *   - a per-vCPU POSIX timer that interrupts KVM_RUN at a deadline: a signal aimed at the
 *     vCPU thread (SIGEV_THREAD_ID) makes KVM_RUN return -EINTR (KVM_EXIT_INTR);
 *   - a kick another thread may send to stop a running vCPU: immediate_exit, then a
 *     signal to the vCPU thread (Documentation/virt/kvm/api.rst, "immediate_exit");
 *   - timing each KVM_RUN with CLOCK_MONOTONIC, from which vmm estimates progress.
 * It is included by csrc/build_kvm.py's set_source and compiled into vmm._kvm_ffi.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>

struct vmm_kvm_vcpu {
    int fd;                     /* the vCPU file descriptor */
    int signo;                  /* the kick / deadline signal */
    struct kvm_run *run;        /* the mmapped kvm_run of fd */
    volatile int stop_requested;
    volatile int in_run;        /* 1 while the owning thread is inside vmm_kvm_vcpu_run */
    int tid;                    /* the thread the timer signals */
    int has_timer;
    timer_t timer;
    uint64_t last_run_ns;       /* time spent inside the last KVM_RUN ioctl */
    uint64_t total_run_ns;
    uint64_t runs;
};

/* A real-time signal nobody else in a Python process uses (NPTL takes the first two). */
static int vmm_kvm_signal(void) { return SIGRTMIN + 6; }

/* The handler does nothing: its only purpose is that the signal interrupts KVM_RUN
 * instead of killing the process. Installed without SA_RESTART. */
static void vmm_kvm_on_signal(int sig) { (void)sig; }

static int vmm_gettid(void) { return (int)syscall(SYS_gettid); }

static uint64_t vmm_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int vmm_kvm_install_handler(int signo)
{
    struct sigaction sa;
    sigset_t set;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = vmm_kvm_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: KVM_RUN must return EINTR */
    if (sigaction(signo, &sa, NULL) < 0)
        return -errno;
    sigemptyset(&set);
    sigaddset(&set, signo);
    return -pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static int vmm_kvm_make_timer(struct vmm_kvm_vcpu *v)
{
    struct sigevent sev;
    if (v->has_timer) {
        timer_delete(v->timer);
        v->has_timer = 0;
    }
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = v->signo;
    sev._sigev_un._tid = vmm_gettid();
    if (timer_create(CLOCK_MONOTONIC, &sev, &v->timer) < 0)
        return -errno;
    v->tid = sev._sigev_un._tid;
    v->has_timer = 1;
    return 0;
}

static int vmm_kvm_vcpu_init(struct vmm_kvm_vcpu *v, int fd, struct kvm_run *run)
{
    int rc;
    memset(v, 0, sizeof *v);
    v->fd = fd;
    v->run = run;
    v->signo = vmm_kvm_signal();
    rc = vmm_kvm_install_handler(v->signo);
    if (rc < 0)
        return rc;
    return vmm_kvm_make_timer(v);
}

static int vmm_kvm_arm(struct vmm_kvm_vcpu *v, int64_t ns, int64_t interval_ns)
{
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = ns / 1000000000;
    its.it_value.tv_nsec = ns % 1000000000;
    its.it_interval.tv_sec = interval_ns / 1000000000;
    its.it_interval.tv_nsec = interval_ns % 1000000000;
    return timer_settime(v->timer, 0, &its, NULL) < 0 ? -errno : 0;
}

/* One KVM_RUN bounded by ``budget_ns`` of host time (<= 0: unbounded). Returns 0 after
 * an exit (run->exit_reason says which) or a negative errno (-EINTR: the deadline or a
 * kick interrupted it). The timer repeats after its first expiry, so a signal that lands
 * between the deadline check and the ioctl cannot leave a guest loop running forever. */
static int vmm_kvm_vcpu_run(struct vmm_kvm_vcpu *v, int64_t budget_ns)
{
    uint64_t start, end;
    int rc, err = 0;
    int tid = vmm_gettid();

    v->last_run_ns = 0;
    if (budget_ns > 0) {
        int64_t interval = budget_ns < 50000 ? 50000 : budget_ns > 10000000 ? 10000000 : budget_ns;
        if (tid != v->tid || !v->has_timer) {
            rc = vmm_kvm_make_timer(v);
            if (rc < 0)
                return rc;
        }
        rc = vmm_kvm_arm(v, budget_ns, interval);
        if (rc < 0)
            return rc;
    }
    v->in_run = 1;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (v->stop_requested)
        v->run->immediate_exit = 1;
    start = vmm_now_ns();
    rc = ioctl(v->fd, KVM_RUN, 0);
    if (rc < 0)
        err = errno;
    end = vmm_now_ns();
    v->in_run = 0;
    if (budget_ns > 0)
        vmm_kvm_arm(v, 0, 0);
    /* A signal that arrived after the exit set nothing we rely on; immediate_exit stays
     * set only while a stop is requested. */
    if (!v->stop_requested)
        v->run->immediate_exit = 0;
    v->last_run_ns = end - start;
    v->total_run_ns += end - start;
    v->runs++;
    return rc < 0 ? -err : 0;
}

/* Thread-safe: make the current or the next KVM_RUN of ``v`` return promptly. */
static void vmm_kvm_vcpu_kick(struct vmm_kvm_vcpu *v)
{
    v->stop_requested = 1;
    v->run->immediate_exit = 1;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (v->in_run && v->tid != vmm_gettid())
        syscall(SYS_tgkill, getpid(), v->tid, v->signo);
}

static void vmm_kvm_vcpu_fini(struct vmm_kvm_vcpu *v)
{
    if (v->has_timer) {
        timer_delete(v->timer);
        v->has_timer = 0;
    }
}

/* ioctl is variadic: cffi calls these fixed-signature wrappers instead. */
static int vmm_ioctl_ptr(int fd, unsigned long request, void *arg)
{
    int rc = ioctl(fd, request, arg);
    return rc < 0 ? -errno : rc;
}

static int vmm_ioctl_int(int fd, unsigned long request, unsigned long arg)
{
    int rc = ioctl(fd, request, arg);
    return rc < 0 ? -errno : rc;
}

static int vmm_open(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* Names for the anonymous structures inside kvm_run and kvm_vcpu_events, so that cffi
 * can take their layout from the compiler. */
#define VMM_MEMBER_TYPE(type, member) __typeof__(((type *)0)->member)
typedef VMM_MEMBER_TYPE(struct kvm_vcpu_events, exception) vmm_events_exception_t;
typedef VMM_MEMBER_TYPE(struct kvm_vcpu_events, interrupt) vmm_events_interrupt_t;
typedef VMM_MEMBER_TYPE(struct kvm_vcpu_events, nmi) vmm_events_nmi_t;
typedef VMM_MEMBER_TYPE(struct kvm_run, fail_entry) vmm_run_fail_entry_t;
typedef VMM_MEMBER_TYPE(struct kvm_run, io) vmm_run_io_t;
typedef VMM_MEMBER_TYPE(struct kvm_run, debug) vmm_run_debug_t;
typedef VMM_MEMBER_TYPE(struct kvm_run, mmio) vmm_run_mmio_t;
typedef VMM_MEMBER_TYPE(struct kvm_run, internal) vmm_run_internal_t;
typedef VMM_MEMBER_TYPE(struct kvm_run, system_event) vmm_run_system_event_t;

static vmm_run_fail_entry_t *vmm_run_fail_entry(struct kvm_run *run) { return &run->fail_entry; }
static vmm_run_io_t *vmm_run_io(struct kvm_run *run) { return &run->io; }
static vmm_run_debug_t *vmm_run_debug(struct kvm_run *run) { return &run->debug; }
static vmm_run_mmio_t *vmm_run_mmio(struct kvm_run *run) { return &run->mmio; }
static vmm_run_internal_t *vmm_run_internal(struct kvm_run *run) { return &run->internal; }
static vmm_run_system_event_t *vmm_run_system_event(struct kvm_run *run) { return &run->system_event; }
