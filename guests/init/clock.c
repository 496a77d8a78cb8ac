/* clock: prints the uptime every 5 seconds. The only timing-dependent output of toyos. */
#include "libc.h"

#define PERIOD_MS 5000

int main(const char *args)
{
    (void)args;
    long next = (uptime_ms() / PERIOD_MS + 1) * PERIOD_MS;
    for (;;) {
        long now = uptime_ms();
        if (now < next) {
            sleep_ms(next - now);
            continue;
        }
        printf("clock: uptime %ld s\n", next / 1000);
        next += PERIOD_MS;
    }
}
