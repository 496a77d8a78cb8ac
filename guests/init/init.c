/*
 * init, process 1: greets, reads the service table /etc/services, starts every service,
 * then waits for children forever, restarting the services marked "restart".
 * Its argument string is the kernel command line ("name=toyos console=ttyS0").
 */
#include "libc.h"

#define MAX_SERVICES 8

struct service {
    char name[16];
    char path[FILE_NAME_MAX];
    char args[64];
    int restart;
    int pid;
};

static struct service services[MAX_SERVICES];
static int nservices;
static char table[2048];

/* Copy the value of key=value from a space-separated command line. */
static void cmdline_value(const char *line, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    for (const char *p = line; *p;) {
        while (*p == ' ')
            p++;
        if (!strncmp(p, key, klen) && p[klen] == '=') {
            p += klen + 1;
            size_t i = 0;
            while (p[i] && p[i] != ' ' && i + 1 < size) {
                out[i] = p[i];
                i++;
            }
            out[i] = 0;
            return;
        }
        while (*p && *p != ' ')
            p++;
    }
}

/* Next whitespace-separated word of *cursor (which stops at the end of the line). */
static char *word(char **cursor)
{
    char *p = *cursor;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p)
        return 0;
    char *start = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    if (*p)
        *p++ = 0;
    *cursor = p;
    return start;
}

static void load_services(void)
{
    int fd = open("/etc/services");
    if (fd < 0) {
        printf("init: no /etc/services (%d)\n", fd);
        return;
    }
    long len = 0, n;
    while ((n = read(fd, table + len, sizeof table - 1 - len)) > 0)
        len += n;
    close(fd);
    table[len] = 0;
    char *line = table;
    int lineno = 0;
    while (line && *line) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        lineno++;
        char *cursor = line;
        char *name = word(&cursor);
        if (name && name[0] != '#') {
            char *path = word(&cursor);
            char *policy = word(&cursor);
            while (*cursor == ' ' || *cursor == '\t')
                cursor++;
            if (!path || !policy || (strcmp(policy, "restart") && strcmp(policy, "once"))) {
                printf("init: /etc/services line %d: expected \"name path restart|once\"\n", lineno);
            } else if (nservices == MAX_SERVICES) {
                printf("init: /etc/services line %d: more than %d services\n", lineno, MAX_SERVICES);
            } else {
                struct service *s = &services[nservices++];
                strncpy_z(s->name, name, sizeof s->name);
                strncpy_z(s->path, path, sizeof s->path);
                strncpy_z(s->args, cursor, sizeof s->args);
                s->restart = !strcmp(policy, "restart");
            }
        }
        line = next;
    }
}

static int prefix_mask(int prefix, unsigned int *mask)
{
    *mask = prefix <= 0 ? 0 : 0xFFFFFFFFu << (32 - prefix);
    return 0;
}

/* Bring up eth0: its address comes from ip=A.B.C.D[/N] on the kernel command line, or,
 * without one, 10.0.0.X where X is the last byte of the MAC address (so VMs on one
 * switch with MACs ...:01, ...:02 are 10.0.0.1 and 10.0.0.2). */
static void network_up(const char *args)
{
    struct netinfo ni;
    if (netinfo(&ni) < 0) {
        printf("init: no network interfaces\n");
        return;
    }
    char text[32] = "", mac[18], addr[16];
    unsigned int ip = 0, mask = 0;
    int prefix = 24;
    cmdline_value(args, "ip", text, sizeof text);
    if (text[0]) {
        if (parse_ipv4(text, &ip, &prefix) < 0) {
            printf("init: ip=%s: not an IPv4 address (A.B.C.D or A.B.C.D/N)\n", text);
            ip = 0;
        } else if (prefix < 0) {
            prefix = 24;
        }
    } else if (ni.mac[5] != 0 && ni.mac[5] != 255) {
        ip = 0x0A000000u | ni.mac[5];
    }
    prefix_mask(prefix, &mask);
    format_mac(mac, ni.mac);
    if (ip && netconf(ip, mask) == 0)
        printf("init: eth0 up, MAC %s, link %s, inet %s/%d\n", mac, ni.link ? "up" : "down",
               format_ipv4(addr, ip), prefix);
    else
        printf("init: eth0 up, MAC %s, link %s, no IPv4 address\n", mac, ni.link ? "up" : "down");
}

static void start(struct service *s)
{
    s->pid = spawn(s->path, s->args);
    if (s->pid < 0)
        printf("init: cannot start %s (%s): error %d\n", s->name, s->path, s->pid);
    else
        printf("init: started %s (pid %d)\n", s->name, s->pid);
}

int main(const char *args)
{
    char name[32] = "unknown";
    cmdline_value(args, "name", name, sizeof name);
    printf("init: toyos ready on %s\n", name);
    char team[32] = "";
    cmdline_value(args, "team", team, sizeof team);
    if (team[0])
        printf("init: team ID %s\n", team);
    else
        printf("init: team ID not set (team=N on the kernel command line)\n");
    network_up(args);
    load_services();
    for (int i = 0; i < nservices; i++)
        start(&services[i]);
    for (;;) {
        int status;
        int pid = wait(-1, &status, 0);
        if (pid < 0) {
            /* No children left at all: nothing will ever happen again. */
            printf("init: no services left, powering off\n");
            poweroff(0);
        }
        for (int i = 0; i < nservices; i++) {
            struct service *s = &services[i];
            if (s->pid != pid)
                continue;
            if (status >= STATUS_FAULT_BASE)
                printf("init: %s (pid %d) killed by exception %d\n", s->name, pid, status - STATUS_FAULT_BASE);
            else
                printf("init: %s (pid %d) exited with status %d\n", s->name, pid, status);
            s->pid = -1;
            if (s->restart)
                start(s);
        }
    }
}
