/*
 * One line instead of a silent death when the CPU core crashes.
 *
 * A defect inside libunicorn (a guest can reach QEMU's translator with any instruction
 * stream) would otherwise kill vmm with a bare "Segmentation fault" from the shell, or
 * with nothing at all under a harness. vmm_report_core_crashes() installs handlers for
 * the fatal signals that write one line to stderr and then die of the same signal
 * (default action), so the exit status still says what happened. Only async-signal-safe
 * calls are used: the line is built in a static buffer and written with write(2).
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

static const char *core_crash_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    default: return "a fatal signal";
    }
}

static void core_crash_handler(int sig)
{
    static const char head[] = "vmm: fatal: the process died of ";
    static const char tail[] = " (a defect in the CPU core or vmm's native code; the guest cannot be resumed)\n";
    const char *name = core_crash_name(sig);
    ssize_t ignored;
    ignored = write(2, head, sizeof head - 1);
    ignored = write(2, name, strlen(name));
    ignored = write(2, tail, sizeof tail - 1);
    (void)ignored;
    signal(sig, SIG_DFL);
    raise(sig);
}

int vmm_report_core_crashes(void)
{
    static char altstack[64 * 1024];
    static int installed;
    static const int signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
    if (installed)
        return 0;
    /* The handler must run even when the crash is a stack overflow. */
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0)
        return -1;
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = core_crash_handler;
        sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        if (sigaction(signals[i], &sa, NULL) != 0)
            return -1;
    }
    installed = 1;
    return 0;
}
