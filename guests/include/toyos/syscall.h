/*
 * toyos system-call ABI, shared by the kernel (kernel/syscall.c) and the libc.
 *
 * A user program executes `syscall` with the number in RAX and up to five arguments in
 * RDI, RSI, RDX, R10, R8 (R10 instead of RCX: the SYSCALL instruction overwrites RCX with
 * the return RIP and R11 with RFLAGS). The result comes back in RAX; negative values are
 * errors (-1 generic failure, -2 no such file or process, -3 bad address, -4 no space).
 * All other registers are preserved.
 */
#ifndef TOYOS_SYSCALL_H
#define TOYOS_SYSCALL_H

#define SYS_EXIT      0   /* exit(status)                       never returns        */
#define SYS_WRITE     1   /* write(fd, buf, len)                 -> bytes written     */
#define SYS_READ      2   /* read(fd, buf, len)                  -> bytes, 0 at EOF   */
#define SYS_OPEN      3   /* open(path)                          -> fd                */
#define SYS_CLOSE     4   /* close(fd)                                                */
#define SYS_SPAWN     5   /* spawn(path, args)                   -> pid of the child  */
#define SYS_WAIT      6   /* wait(pid or -1, int *status, flags) -> pid, 0 (WNOHANG)  */
#define SYS_GETPID    7   /* getpid()                                                 */
#define SYS_SLEEP     8   /* sleep(milliseconds)                                      */
#define SYS_UPTIME    9   /* uptime()                            -> milliseconds      */
#define SYS_PROCINFO 10   /* procinfo(slot, struct procinfo *)   -> 0, -2 past the end */
#define SYS_FSINFO   11   /* fsinfo(index, struct fileinfo *)    -> 0, -2 past the end */
#define SYS_KILL     12   /* kill(pid)                                                */
#define SYS_REBOOT   13   /* reboot()  through the 8042 (0xFE to port 0x64)          */
#define SYS_POWEROFF 14   /* poweroff(code): writes code to port 0xF4                */
#define SYS_CMDLINE  15   /* cmdline(buf, len)                   -> length            */
#define SYS_SEND     16   /* send(channel, buf, len): blocks while the slot is full  */
#define SYS_RECV     17   /* recv(channel, buf, len): blocks until a message arrives */
#define SYS_NETINFO  18   /* netinfo(struct netinfo *)           -> 0, -2 no NIC      */
#define SYS_NETSEND  19   /* netsend(frame, len): one Ethernet frame, 14..1514 bytes  */
#define SYS_NETRECV  20   /* netrecv(buf, len, timeout_ms)       -> length, 0 timeout */
#define SYS_NETCONF  21   /* netconf(ip, netmask): eth0's IPv4 address (host order)   */

#define WNOHANG 1

#define E_FAIL   (-1)
#define E_NOENT  (-2)
#define E_FAULT  (-3)
#define E_NOSPC  (-4)

/* Exit status of a process killed by a CPU exception: 256 + vector. By kill(): 255. */
#define STATUS_FAULT_BASE 256
#define STATUS_KILLED     255

#define PROC_NAME_MAX 16
#define FILE_NAME_MAX 48

struct procinfo {
    int pid;
    int ppid;
    int state;                      /* 1 ready/running, 2 blocked, 3 sleeping, 4 zombie */
    char name[PROC_NAME_MAX];
};

struct fileinfo {
    char name[FILE_NAME_MAX];
    unsigned int size;
    unsigned int flags;             /* bit 0: executable */
};

/* eth0 as netinfo() reports it. IPv4 addresses in host byte order (10.0.0.1 = 0x0A000001). */
struct netinfo {
    unsigned char mac[6];
    unsigned char link;             /* 1: link up (virtio-net status) */
    unsigned char pad;
    unsigned int ip, netmask;
    unsigned long rx_frames, tx_frames, rx_dropped;
    char driver[16];                /* "virtio-net" */
    unsigned char pci_dev, irq, pad2[2];
};

#define ETH_FRAME_MAX 1514          /* without the FCS */

#endif
