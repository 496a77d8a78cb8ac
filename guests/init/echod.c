/* echod, the echo service: receives a message on channel 0 and answers "echo: MESSAGE" on
 * channel 1 (the shell's "send" command is the client). */
#include "libc.h"

int main(const char *args)
{
    (void)args;
    char msg[257], reply[300];
    for (;;) {
        long n = recv(ECHO_CHANNEL, msg, sizeof msg - 1);
        if (n < 0)
            return 1;
        msg[n] = 0;
        int len = snprintf(reply, sizeof reply, "echo: %s", msg);
        send(ECHO_CHANNEL + 1, reply, (size_t)len);
    }
}
