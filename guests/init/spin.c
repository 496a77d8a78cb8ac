/* spin MS: burns the CPU for MS milliseconds of uptime without blocking, to show that the
 * timer preempts it (the clock service keeps printing meanwhile). */
#include "libc.h"

int main(const char *args)
{
    long ms = atol(args);
    long end = uptime_ms() + (ms > 0 ? ms : 1000);
    volatile unsigned long spins = 0;
    while (uptime_ms() < end)
        for (int i = 0; i < 100000; i++)
            spins++;
    printf("spin: done\n");
    return 0;
}
