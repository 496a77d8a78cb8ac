/* sh: a minimal shell on the serial console. Type "help" for the commands. */
#include "libc.h"

static char line[256];

static const char *state_name(int state)
{
    switch (state) {
    case 1: return "run";
    case 2: return "blocked";
    case 3: return "sleep";
    case 4: return "zombie";
    default: return "?";
    }
}

static void run(const char *path, const char *args)
{
    int pid = spawn(path, args);
    if (pid < 0) {
        printf("sh: cannot run %s: error %d\n", path, pid);
        return;
    }
    int status = 0;
    wait(pid, &status, 0);
    if (status >= STATUS_FAULT_BASE)
        printf("sh: %s (pid %d) killed by exception %d\n", path, pid, status - STATUS_FAULT_BASE);
    else if (status)
        printf("sh: %s (pid %d) exited with status %d\n", path, pid, status);
}

static void cmd_ls(void)
{
    struct fileinfo fi;
    for (int i = 0; fsinfo(i, &fi) == 0; i++)
        printf("%7u %c %s\n", fi.size, fi.flags & 1 ? 'x' : '-', fi.name);
}

static void cmd_cat(const char *path)
{
    int fd = open(path);
    if (fd < 0) {
        printf("cat: %s: no such file\n", path);
        return;
    }
    char buf[512];
    long n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        write(1, buf, (size_t)n);
    close(fd);
}

static void cmd_ps(void)
{
    struct procinfo pi;
    printf("  PID  PPID STATE   NAME\n");
    for (int slot = 0; procinfo(slot, &pi) == 0; slot++)
        if (pi.pid >= 0)
            printf("%5d %5d %-7s %s\n", pi.pid, pi.ppid, state_name(pi.state), pi.name);
}

static void cmd_send(const char *text)
{
    char reply[300];
    if (send(ECHO_CHANNEL, text, strlen(text)) < 0) {
        printf("sh: send failed\n");
        return;
    }
    long n = recv(ECHO_CHANNEL + 1, reply, sizeof reply - 1);
    if (n < 0)
        n = 0;
    reply[n] = 0;
    printf("%s\n", reply);
}

/* ---- network: ifconfig and ping ------------------------------------------------------ */

static unsigned char frame[ETH_FRAME_MAX];
static unsigned char answer[ETH_FRAME_MAX];

static int prefix_of(unsigned int mask)
{
    int n = 0;
    while (n < 32 && (mask << n) & 0x80000000u)
        n++;
    return n;
}

static void cmd_ifconfig(char *args)
{
    struct netinfo ni;
    if (netinfo(&ni) < 0) {
        printf("ifconfig: no network interfaces\n");
        return;
    }
    if (*args) {
        char *addr = args;
        if (!strncmp(args, "eth0", 4) && (args[4] == ' ' || !args[4])) {
            addr = args + 4;
            while (*addr == ' ')
                addr++;
        }
        unsigned int ip;
        int prefix;
        if (parse_ipv4(addr, &ip, &prefix) < 0) {
            printf("ifconfig: usage: ifconfig [eth0] [A.B.C.D[/N]]\n");
            return;
        }
        if (prefix < 0)
            prefix = 24;
        netconf(ip, prefix ? 0xFFFFFFFFu << (32 - prefix) : 0);
        netinfo(&ni);
    }
    char mac[18], ip[16], mask[16];
    printf("eth0: %s, link %s\n", ni.driver, ni.link ? "up" : "down");
    printf("      ether %s\n", format_mac(mac, ni.mac));
    if (ni.ip)
        printf("      inet %s/%d netmask %s\n", format_ipv4(ip, ni.ip), prefix_of(ni.netmask),
               format_ipv4(mask, ni.netmask));
    else
        printf("      no IPv4 address\n");
    printf("      pci 00:%02x.0 irq %u\n", ni.pci_dev, ni.irq);
    printf("      RX packets %lu dropped %lu  TX packets %lu\n", ni.rx_frames, ni.rx_dropped, ni.tx_frames);
}

static void ethernet(const unsigned char *dst, const unsigned char *src, unsigned int type)
{
    memcpy(frame, dst, 6);
    memcpy(frame + 6, src, 6);
    put_be16(frame + 12, type);
}

/* Ask for target's MAC with ARP (three tries, wait_ms each). 0 and mac filled on success. */
static int arp_resolve(const struct netinfo *ni, unsigned int target, unsigned char *mac, long wait_ms)
{
    static const unsigned char broadcast[6] = {255, 255, 255, 255, 255, 255};
    for (int attempt = 0; attempt < 3; attempt++) {
        ethernet(broadcast, ni->mac, 0x0806);
        unsigned char *a = frame + 14;
        put_be16(a, 1);                            /* Ethernet */
        put_be16(a + 2, 0x0800);                   /* IPv4 */
        a[4] = 6;
        a[5] = 4;
        put_be16(a + 6, 1);                        /* request */
        memcpy(a + 8, ni->mac, 6);
        put_be32(a + 14, ni->ip);
        memset(a + 18, 0, 6);
        put_be32(a + 24, target);
        netsend(frame, 14 + 28);
        long deadline = uptime_ms() + wait_ms;
        for (long left = wait_ms; left > 0; left = deadline - uptime_ms()) {
            long n = netrecv(answer, sizeof answer, left);
            if (n <= 0)
                break;
            const unsigned char *r = answer + 14;
            if (n >= 42 && get_be16(answer + 12) == 0x0806 && get_be16(r + 6) == 2 && get_be32(r + 14) == target) {
                memcpy(mac, r + 8, 6);
                return 0;
            }
        }
    }
    return -1;
}

static void cmd_ping(char *args)
{
    struct netinfo ni;
    unsigned int target;
    int prefix;
    char *count_text = args;
    while (*count_text && *count_text != ' ')
        count_text++;
    while (*count_text == ' ')
        count_text++;
    long count = *count_text ? atol(count_text) : 3;
    char *wait_text = count_text;
    while (*wait_text && *wait_text != ' ')
        wait_text++;
    while (*wait_text == ' ')
        wait_text++;
    long wait_ms = *wait_text ? atol(wait_text) : 1000;
    if (parse_ipv4(args, &target, &prefix) < 0 || prefix >= 0 || count < 1 || count > 100 || wait_ms < 10 ||
        wait_ms > 60000) {
        printf("ping: usage: ping A.B.C.D [COUNT (1-100, default 3) [WAIT_MS per answer (10-60000, default 1000)]]\n");
        return;
    }
    if (netinfo(&ni) < 0 || !ni.ip) {
        printf("ping: eth0 has no IPv4 address (ifconfig eth0 A.B.C.D)\n");
        return;
    }
    char text[16];
    format_ipv4(text, target);
    printf("PING %s: 56 data bytes\n", text);
    unsigned char mac[6];
    long received = 0, sent = 0;
    if (arp_resolve(&ni, target, mac, wait_ms) < 0) {
        printf("ping: %s: no ARP reply (host unreachable)\n", text);
    } else {
        unsigned int id = (unsigned)getpid() & 0xFFFF;
        for (long seq = 1; seq <= count; seq++) {
            ethernet(mac, ni.mac, 0x0800);
            unsigned char *ip = frame + 14, *icmp = ip + 20;
            memset(ip, 0, 20);
            ip[0] = 0x45;
            put_be16(ip + 2, 20 + 8 + 56);
            put_be16(ip + 4, (unsigned)seq);
            ip[8] = 64;
            ip[9] = 1;                          /* ICMP */
            put_be32(ip + 12, ni.ip);
            put_be32(ip + 16, target);
            put_be16(ip + 10, inet_checksum(ip, 20));
            icmp[0] = 8;                        /* echo request */
            icmp[1] = 0;
            put_be16(icmp + 2, 0);
            put_be16(icmp + 4, id);
            put_be16(icmp + 6, (unsigned)seq);
            for (int i = 0; i < 56; i++)
                icmp[8 + i] = (unsigned char)(0x10 + i);
            put_be16(icmp + 2, inet_checksum(icmp, 8 + 56));
            netsend(frame, 14 + 20 + 8 + 56);
            sent++;
            long deadline = uptime_ms() + wait_ms;
            for (long left = wait_ms; left > 0; left = deadline - uptime_ms()) {
                long n = netrecv(answer, sizeof answer, left);
                if (n <= 0)
                    break;
                const unsigned char *rip = answer + 14, *ricmp = rip + (rip[0] & 15) * 4;
                if (n < 14 + 20 + 8 || get_be16(answer + 12) != 0x0800 || rip[9] != 1 || get_be32(rip + 12) != target)
                    continue;
                if (ricmp[0] != 0 || get_be16(ricmp + 4) != id || get_be16(ricmp + 6) != (unsigned)seq)
                    continue;
                unsigned int bytes = get_be16(rip + 2) - (rip[0] & 15) * 4u;
                printf("%u bytes from %s: icmp_seq=%ld ttl=%u\n", bytes, text, seq, rip[8]);
                received++;
                break;
            }
        }
    }
    printf("--- %s ping statistics ---\n", text);
    printf("%ld packets transmitted, %ld received, %ld%% packet loss\n", sent, received,
           sent ? (sent - received) * 100 / sent : 100);
}

static void help(void)
{
    printf("commands: help, echo TEXT, ls, cat FILE, ps, run PATH [ARGS], crash, kill PID,\n"
           "          send TEXT (to the echo service), ifconfig [eth0 A.B.C.D[/N]], ping A.B.C.D [N [MS]],\n"
           "          uptime, reboot, poweroff\n");
}

int main(const char *args)
{
    (void)args;
    printf("sh: toyos shell, type help for commands\n");
    for (;;) {
        printf("toyos$ ");
        long n = read(0, line, sizeof line - 1);
        if (n <= 0)
            continue;
        line[n] = 0;
        if (line[n - 1] == '\n')
            line[n - 1] = 0;
        char *cmd = line;
        while (*cmd == ' ')
            cmd++;
        char *rest = cmd;
        while (*rest && *rest != ' ')
            rest++;
        if (*rest)
            *rest++ = 0;
        while (*rest == ' ')
            rest++;

        if (!*cmd)
            continue;
        else if (!strcmp(cmd, "help"))
            help();
        else if (!strcmp(cmd, "echo"))
            printf("%s\n", rest);
        else if (!strcmp(cmd, "ls"))
            cmd_ls();
        else if (!strcmp(cmd, "cat"))
            cmd_cat(rest);
        else if (!strcmp(cmd, "ps"))
            cmd_ps();
        else if (!strcmp(cmd, "crash"))
            run("/bin/crash", "");
        else if (!strcmp(cmd, "run")) {
            char *a = rest;
            while (*a && *a != ' ')
                a++;
            if (*a)
                *a++ = 0;
            run(rest, a);
        } else if (!strcmp(cmd, "kill")) {
            int r = kill((int)atol(rest));
            if (r < 0)
                printf("kill: %s: error %d\n", rest, r);
        } else if (!strcmp(cmd, "send"))
            cmd_send(rest);
        else if (!strcmp(cmd, "ifconfig"))
            cmd_ifconfig(rest);
        else if (!strcmp(cmd, "ping"))
            cmd_ping(rest);
        else if (!strcmp(cmd, "uptime"))
            printf("up %ld ms\n", uptime_ms());
        else if (!strcmp(cmd, "reboot"))
            reboot();
        else if (!strcmp(cmd, "poweroff"))
            poweroff(0);
        else
            printf("sh: %s: unknown command (try help)\n", cmd);
    }
}
