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

static void help(void)
{
    printf("commands: help, echo TEXT, ls, cat FILE, ps, run PATH [ARGS], crash, kill PID,\n"
           "          send TEXT (to the echo service), uptime, reboot, poweroff\n");
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
