/*
 * Processes, the scheduler and the user-program ELF loader.
 *
 * A process owns a PML4 (user half private, kernel half shared), a 16 KiB kernel stack and
 * the trap frame at its top that holds its user registers while it is not running. The
 * kernel itself never runs with interrupts enabled, so it needs no locks: a context switch
 * is "return a different trap frame" from an interrupt or system call.
 *
 * Scheduling is round-robin over runnable processes, preempted by the 100 Hz PIT tick.
 * A blocked process records why (reason) and is runnable again as soon as its condition
 * holds; blocking system calls rewind RIP to the SYSCALL instruction and run again.
 * Slot 0 is the idle process: a kernel loop of `sti; hlt`.
 */
#include "kernel.h"
#include "toyos/syscall.h"

#define NPROC 32
#define KSTACK_SIZE 16384
#define USER_STACK_TOP 0x0000000070000000ull
#define USER_STACK_PAGES 8
#define USER_LOAD_MIN 0x1000ull

enum state { UNUSED = 0, RUNNABLE = 1, BLOCKED = 2, SLEEPING = 3, ZOMBIE = 4 };

struct proc {
    int pid;
    int ppid;
    enum state state;
    int reason;                 /* what a BLOCKED process waits for: a BLOCK_* value */
    int wait_arg;               /* pid for BLOCK_WAIT, channel for BLOCK_SEND/RECV */
    uint64_t wake_tick;         /* SLEEPING until ticks reaches this; netrecv's deadline */
    int net_waiting;            /* in netrecv: wake_tick holds its deadline */
    int exit_status;
    char name[PROC_NAME_MAX];
    uint64_t pml4;
    struct trapframe *tf;
    struct {
        int file;               /* -1: free slot */
        uint64_t offset;
    } fds[8];
};

static struct proc procs[NPROC];
static uint8_t kstacks[NPROC][KSTACK_SIZE] __attribute__((aligned(16)));
static struct proc *current;
static int next_pid = 1;
volatile uint64_t ticks;

static uint64_t kstack_top(struct proc *p)
{
    return (uint64_t)kstacks[p - procs] + KSTACK_SIZE;
}

static void idle_loop(void)
{
    for (;;)
        __asm__ volatile("sti; hlt; cli");
}

void proc_init(void)
{
    struct proc *idle = &procs[0];
    idle->pid = 0;
    idle->state = RUNNABLE;
    strncpy_z(idle->name, "idle", sizeof idle->name);
    idle->pml4 = kernel_pml4;
    struct trapframe *tf = (struct trapframe *)(kstack_top(idle) - sizeof *tf);
    memset(tf, 0, sizeof *tf);
    tf->rip = (uint64_t)idle_loop;
    tf->cs = SEL_KCODE;
    tf->ss = SEL_KDATA;
    tf->rflags = 0x002;
    tf->rsp = kstack_top(idle) - sizeof *tf - 64;
    idle->tf = tf;
    current = idle;
}

static struct proc *find_pid(int pid)
{
    for (int i = 1; i < NPROC; i++)
        if (procs[i].state != UNUSED && procs[i].pid == pid)
            return &procs[i];
    return 0;
}

/* ---- ELF loading ------------------------------------------------------------------------ */

struct elf64_ehdr {
    uint8_t ident[16];
    uint16_t type, machine;
    uint32_t version;
    uint64_t entry, phoff, shoff;
    uint32_t flags;
    uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};

struct elf64_phdr {
    uint32_t type, flags;
    uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

#define PT_LOAD 1
#define PF_W 2
#define MAX_PHDRS 16

static uint8_t load_buf[PAGE_SIZE];

/* Map [va, va+memsz) into pml4 and fill it from the file; the rest stays zero. */
static int load_segment(uint64_t pml4, int file, const struct elf64_phdr *ph)
{
    uint64_t start = ph->vaddr & ~(PAGE_SIZE - 1);
    uint64_t end = ALIGN_UP(ph->vaddr + ph->memsz, PAGE_SIZE);
    for (uint64_t va = start; va < end; va += PAGE_SIZE) {
        if (vm_translate(pml4, va, 0))
            continue;                       /* shared with the previous segment */
        uint64_t pa = frame_alloc();
        if (!pa || vm_map(pml4, va, pa, 1))
            return E_NOSPC;
    }
    uint64_t done = 0;
    while (done < ph->filesz) {
        uint64_t va = ph->vaddr + done;
        uint64_t n = PAGE_SIZE - (va & (PAGE_SIZE - 1));
        if (n > ph->filesz - done)
            n = ph->filesz - done;
        if (fs_read(file, ph->offset + done, load_buf, n) != (long)n)
            return E_FAIL;
        memcpy(P2V(vm_translate(pml4, va, 0)), load_buf, n);
        done += n;
    }
    return 0;
}

/* Check the ELF header and program headers, then load. Returns the entry point or 0. */
static uint64_t load_elf(uint64_t pml4, int file)
{
    struct elf64_ehdr eh;
    if (fs_read(file, 0, &eh, sizeof eh) != sizeof eh)
        return 0;
    if (memcmp(eh.ident, "\x7F" "ELF", 4) || eh.ident[4] != 2 || eh.ident[5] != 1 || eh.type != 2 ||
        eh.machine != 62 || eh.phentsize != sizeof(struct elf64_phdr) || eh.phnum > MAX_PHDRS)
        return 0;
    struct elf64_phdr ph[MAX_PHDRS];
    long phbytes = (long)(eh.phnum * sizeof(struct elf64_phdr));
    if (fs_read(file, eh.phoff, ph, (uint64_t)phbytes) != phbytes)
        return 0;
    int loaded = 0;
    for (int i = 0; i < eh.phnum; i++) {
        if (ph[i].type != PT_LOAD || ph[i].memsz == 0)
            continue;
        uint64_t end = ph[i].vaddr + ph[i].memsz;
        if (ph[i].filesz > ph[i].memsz || ph[i].vaddr < USER_LOAD_MIN || end < ph[i].vaddr ||
            end > USER_STACK_TOP - USER_STACK_PAGES * PAGE_SIZE || ph[i].offset + ph[i].filesz > fs_size(file))
            return 0;
        if (load_segment(pml4, file, &ph[i]))
            return 0;
        loaded = 1;
    }
    if (!loaded || !vm_translate(pml4, eh.entry, 0))
        return 0;
    return eh.entry;
}

/* ---- process life cycle ------------------------------------------------------------------ */

int proc_spawn(const char *path, const char *args, int parent)
{
    int file = fs_find(path);
    if (file < 0)
        return E_NOENT;
    struct proc *p = 0;
    for (int i = 1; i < NPROC; i++)
        if (procs[i].state == UNUSED) {
            p = &procs[i];
            break;
        }
    if (!p)
        return E_NOSPC;
    uint64_t pml4 = vm_new_space();
    if (!pml4)
        return E_NOSPC;
    uint64_t entry = load_elf(pml4, file);
    if (!entry) {
        vm_free_user(pml4);
        frame_free(pml4);
        return E_FAIL;
    }
    /* The user stack, with the argument string copied to its top. */
    for (uint64_t i = 1; i <= USER_STACK_PAGES; i++) {
        uint64_t pa = frame_alloc();
        if (!pa || vm_map(pml4, USER_STACK_TOP - i * PAGE_SIZE, pa, 1)) {
            vm_free_user(pml4);
            frame_free(pml4);
            return E_NOSPC;
        }
    }
    size_t alen = args ? strlen(args) : 0;
    if (alen > 255)
        alen = 255;
    uint64_t args_va = USER_STACK_TOP - 256;
    char *args_k = P2V(vm_translate(pml4, args_va, 1));
    memcpy(args_k, args ? args : "", alen);
    args_k[alen] = 0;

    memset(p, 0, sizeof *p);
    p->pid = next_pid++;
    p->ppid = parent;
    p->pml4 = pml4;
    const char *base = path;
    for (const char *s = path; *s; s++)
        if (*s == '/')
            base = s + 1;
    strncpy_z(p->name, base, sizeof p->name);
    for (int i = 0; i < 8; i++)
        p->fds[i].file = -1;
    struct trapframe *tf = (struct trapframe *)(kstack_top(p) - sizeof *tf);
    memset(tf, 0, sizeof *tf);
    tf->rip = entry;
    tf->cs = SEL_UCODE;
    tf->ss = SEL_UDATA;
    tf->rflags = 0x202;                     /* IF on */
    tf->rsp = args_va - 16;                 /* 16-byte aligned at _start */
    tf->rdi = args_va;                      /* main's argument: the argument string */
    p->tf = tf;
    p->state = RUNNABLE;
    return p->pid;
}

static void proc_exit(struct proc *p, int status)
{
    if (p->pid == 1)
        panic("init exited with status %d", status);
    if (read_cr3() == p->pml4)
        write_cr3(kernel_pml4);
    vm_free_user(p->pml4);
    p->exit_status = status;
    p->state = ZOMBIE;
    for (int i = 1; i < NPROC; i++)          /* orphans go to init */
        if (procs[i].state != UNUSED && procs[i].ppid == p->pid)
            procs[i].ppid = 1;
}

static void proc_reap(struct proc *p)
{
    frame_free(p->pml4);
    p->state = UNUSED;
}

/* ---- scheduling --------------------------------------------------------------------------- */

enum { BLOCK_READ = 1, BLOCK_WAIT, BLOCK_SEND, BLOCK_RECV, BLOCK_NET };

static int has_zombie_child(struct proc *p, int pid);
static int channel_ready(int reason, int chan);
static int console_line_ready(void);

static int runnable(struct proc *p)
{
    switch (p->state) {
    case RUNNABLE:
        return 1;
    case SLEEPING:
        return ticks >= p->wake_tick;
    case BLOCKED:
        if (p->reason == BLOCK_READ)
            return console_line_ready();
        if (p->reason == BLOCK_WAIT)
            return has_zombie_child(p, p->wait_arg) != 0;
        if (p->reason == BLOCK_NET)
            return net_rx_pending() || ticks >= p->wake_tick;
        return channel_ready(p->reason, p->wait_arg);
    default:
        return 0;
    }
}

static void switch_to(struct proc *p)
{
    if (p->state == SLEEPING || p->state == BLOCKED)
        p->state = RUNNABLE;
    current = p;
    tss_set_rsp0(kstack_top(p));
    if (read_cr3() != p->pml4)
        write_cr3(p->pml4);
}

/* Pick the next runnable process after the current one (round robin); idle if none. */
struct trapframe *schedule(void)
{
    int start = (int)(current - procs);
    for (int k = 1; k <= NPROC; k++) {
        struct proc *p = &procs[(start + k) % NPROC];
        if (p != &procs[0] && runnable(p)) {
            switch_to(p);
            return p->tf;
        }
    }
    switch_to(&procs[0]);
    return procs[0].tf;
}

struct trapframe *timer_tick(struct trapframe *tf)
{
    ticks++;
    serial_poll_input();
    net_poll();
    current->tf = tf;
    return schedule();
}

struct trapframe *wake_from_idle(struct trapframe *tf)
{
    if (current != &procs[0])
        return tf;
    current->tf = tf;
    return schedule();
}

__attribute__((noreturn)) void start_first_process(void)
{
    trap_return(schedule());
}

struct trapframe *user_fault(struct trapframe *tf)
{
    current->tf = tf;
    if (tf->vector == 14)
        kprintf("fault: pid %d (%s): page fault at 0x%lx error 0x%lx rip 0x%lx\n", current->pid,
                current->name, read_cr2(), tf->error, tf->rip);
    else
        kprintf("fault: pid %d (%s): %s (vector %lu) error 0x%lx rip 0x%lx\n", current->pid, current->name,
                exception_name(tf->vector), tf->vector, tf->error, tf->rip);
    proc_exit(current, STATUS_FAULT_BASE + (int)tf->vector);
    return schedule();
}

/* ---- system calls ------------------------------------------------------------------------- */

static int has_zombie_child(struct proc *p, int pid)
{
    int children = 0;
    for (int i = 1; i < NPROC; i++) {
        struct proc *c = &procs[i];
        if (c->state == UNUSED || c->ppid != p->pid || (pid > 0 && c->pid != pid))
            continue;
        children++;
        if (c->state == ZOMBIE)
            return 1;
    }
    return children ? 0 : -1;              /* -1: nothing to wait for */
}

static int console_line_ready(void)
{
    return console_has_line();
}

#define NCHAN 4
#define MSG_MAX 256
static struct {
    int full;
    uint32_t len;
    char data[MSG_MAX];
} channels[NCHAN];

static int channel_ready(int reason, int chan)
{
    return reason == BLOCK_SEND ? !channels[chan].full : channels[chan].full;
}

/* Block the caller and run the system call again when `reason` is satisfied. */
static struct trapframe *block(struct trapframe *tf, int reason, int arg)
{
    tf->rip -= 2;                          /* back onto the 2-byte SYSCALL instruction */
    current->state = BLOCKED;
    current->reason = reason;
    current->wait_arg = arg;
    return schedule();
}

#define USER_OK(ptr, len, write) user_range_ok(current->pml4, (uint64_t)(ptr), (uint64_t)(len), (write))

/* Copy a user string (at most n-1 bytes) into a kernel buffer. */
static int copy_user_string(char *dst, uint64_t src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!USER_OK(src + i, 1, 0))
            return E_FAULT;
        dst[i] = *(const char *)(src + i);
        if (!dst[i])
            return 0;
    }
    dst[n - 1] = 0;
    return 0;
}

static long sys_write(int fd, uint64_t buf, uint64_t len)
{
    if (fd != 1 && fd != 2)
        return E_FAIL;
    if (!USER_OK(buf, len, 0))
        return E_FAULT;
    console_write((const char *)buf, len);
    return (long)len;
}

extern char cmdline[];

struct trapframe *syscall_dispatch(struct trapframe *tf)
{
    current->tf = tf;
    uint64_t a0 = tf->rdi, a1 = tf->rsi, a2 = tf->rdx;
    long ret = E_FAIL;
    char path[FILE_NAME_MAX];
    switch (tf->rax) {
    case SYS_EXIT:
        proc_exit(current, (int)a0);
        return schedule();
    case SYS_WRITE:
        ret = sys_write((int)a0, a1, a2);
        break;
    case SYS_READ:
        if (!USER_OK(a1, a2, 1)) {
            ret = E_FAULT;
        } else if (a0 == 0) {
            if (!a2) {
                ret = 0;
            } else {
                ret = console_read_line((char *)a1, a2);
                if (ret < 0)
                    return block(tf, BLOCK_READ, 0);
            }
        } else if (a0 < 8 && current->fds[a0].file >= 0) {
            ret = fs_read(current->fds[a0].file, current->fds[a0].offset, (void *)a1, a2);
            if (ret > 0)
                current->fds[a0].offset += (uint64_t)ret;
        }
        break;
    case SYS_OPEN:
        if ((ret = copy_user_string(path, a0, sizeof path)) < 0)
            break;
        ret = fs_find(path);
        if (ret < 0)
            break;
        for (int fd = 3; fd < 8; fd++)
            if (current->fds[fd].file < 0) {
                current->fds[fd].file = (int)ret;
                current->fds[fd].offset = 0;
                ret = fd;
                goto done;
            }
        ret = E_NOSPC;
        break;
    case SYS_CLOSE:
        if (a0 >= 3 && a0 < 8 && current->fds[a0].file >= 0) {
            current->fds[a0].file = -1;
            ret = 0;
        }
        break;
    case SYS_SPAWN: {
        char args[256];
        if ((ret = copy_user_string(path, a0, sizeof path)) < 0)
            break;
        args[0] = 0;
        if (a1 && (ret = copy_user_string(args, a1, sizeof args)) < 0)
            break;
        ret = proc_spawn(path, args, current->pid);
        break;
    }
    case SYS_WAIT: {
        int *status = (int *)a1;
        if (status && !USER_OK(status, sizeof *status, 1)) {
            ret = E_FAULT;
            break;
        }
        int have = has_zombie_child(current, (int)a0);
        if (have < 0) {
            ret = E_NOENT;
            break;
        }
        if (!have) {
            if (a2 & WNOHANG) {
                ret = 0;
                break;
            }
            return block(tf, BLOCK_WAIT, (int)a0);
        }
        for (int i = 1; i < NPROC; i++) {
            struct proc *c = &procs[i];
            if (c->state == ZOMBIE && c->ppid == current->pid && ((int)a0 <= 0 || c->pid == (int)a0)) {
                if (status)
                    *status = c->exit_status;
                ret = c->pid;
                proc_reap(c);
                break;
            }
        }
        break;
    }
    case SYS_GETPID:
        ret = current->pid;
        break;
    case SYS_SLEEP:
        tf->rax = 0;
        current->wake_tick = ticks + (a0 + 1000 / HZ - 1) / (1000 / HZ);
        current->state = SLEEPING;
        return schedule();
    case SYS_UPTIME:
        ret = (long)(ticks * (1000 / HZ));
        break;
    case SYS_PROCINFO: {
        struct procinfo *pi = (struct procinfo *)a1;
        if (a0 >= NPROC) {
            ret = E_NOENT;
        } else if (!USER_OK(pi, sizeof *pi, 1)) {
            ret = E_FAULT;
        } else {
            struct proc *p = &procs[a0];
            pi->pid = p->state == UNUSED ? -1 : p->pid;
            pi->ppid = p->ppid;
            pi->state = p->state;
            memcpy(pi->name, p->name, sizeof pi->name);
            ret = 0;
        }
        break;
    }
    case SYS_FSINFO: {
        struct fileinfo *fi = (struct fileinfo *)a1;
        if (a0 >= (uint64_t)fs_count()) {
            ret = E_NOENT;
        } else if (!USER_OK(fi, sizeof *fi, 1)) {
            ret = E_FAULT;
        } else {
            strncpy_z(fi->name, fs_name((int)a0), sizeof fi->name);
            fi->size = fs_size((int)a0);
            fi->flags = fs_flags((int)a0);
            ret = 0;
        }
        break;
    }
    case SYS_KILL: {
        struct proc *p = find_pid((int)a0);
        if (!p || p->state == ZOMBIE || p->pid == 1) {
            ret = p ? E_FAIL : E_NOENT;
            break;
        }
        proc_exit(p, STATUS_KILLED);
        if (p == current)
            return schedule();
        ret = 0;
        break;
    }
    case SYS_REBOOT:
        kprintf("kernel: reboot\n");
        outb(0x64, 0xFE);                  /* 8042: pulse the CPU reset line */
        halt_forever();
    case SYS_POWEROFF:
        kprintf("kernel: power off\n");
        outb(0xF4, (uint8_t)a0);           /* isa-debug-exit: status (a0 << 1) | 1 */
        halt_forever();
    case SYS_CMDLINE: {
        size_t n = strlen(cmdline) + 1;
        if (a1 < n || !USER_OK(a0, n, 1)) {
            ret = E_FAULT;
            break;
        }
        memcpy((void *)a0, cmdline, n);
        ret = (long)(n - 1);
        break;
    }
    case SYS_SEND:
    case SYS_RECV: {
        if (a0 >= NCHAN || !USER_OK(a1, a2, tf->rax == SYS_RECV)) {
            ret = E_FAULT;
            break;
        }
        if (tf->rax == SYS_SEND) {
            if (channels[a0].full)
                return block(tf, BLOCK_SEND, (int)a0);
            uint32_t n = a2 > MSG_MAX ? MSG_MAX : (uint32_t)a2;
            memcpy(channels[a0].data, (void *)a1, n);
            channels[a0].len = n;
            channels[a0].full = 1;
            ret = n;
        } else {
            if (!channels[a0].full)
                return block(tf, BLOCK_RECV, (int)a0);
            uint32_t n = channels[a0].len < a2 ? channels[a0].len : (uint32_t)a2;
            memcpy((void *)a1, channels[a0].data, n);
            channels[a0].full = 0;
            ret = n;
        }
        break;
    }
    case SYS_NETINFO: {
        struct netinfo info;
        if (!USER_OK(a0, sizeof info, 1)) {
            ret = E_FAULT;
            break;
        }
        ret = sys_netinfo(&info);
        if (ret == 0)
            memcpy((void *)a0, &info, sizeof info);
        break;
    }
    case SYS_NETSEND:
        if (a1 > ETH_FRAME_MAX || !USER_OK(a0, a1, 0))
            ret = a1 > ETH_FRAME_MAX ? E_FAIL : E_FAULT;
        else
            ret = net_send_frame((const void *)a0, a1);
        break;
    case SYS_NETRECV:
        if (!USER_OK(a0, a1, 1)) {
            ret = E_FAULT;
            break;
        }
        if (!current->net_waiting) {        /* first time through (not a re-run after blocking) */
            current->net_waiting = 1;
            current->wake_tick = ticks + (a2 + 1000 / HZ - 1) / (1000 / HZ);
        }
        if (net_rx_pending()) {
            ret = net_rx_pop((void *)a0, a1);
        } else if (ticks >= current->wake_tick) {
            ret = 0;
        } else {
            return block(tf, BLOCK_NET, 0);
        }
        current->net_waiting = 0;
        break;
    case SYS_NETCONF:
        ret = net_set_ip((uint32_t)a0, (uint32_t)a1);
        break;
    default:
        ret = E_FAIL;
    }
done:
    tf->rax = (uint64_t)ret;
    return tf;
}
