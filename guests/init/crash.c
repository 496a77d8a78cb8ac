/* crash: reads from address 0 to show that a user fault kills the program, not the kernel. */
#include "libc.h"

int main(const char *args)
{
    (void)args;
    int *p;
    /* An opaque NULL: the compiler cannot see it is NULL, so it emits a real load. */
    __asm__("" : "=r"(p) : "0"(0L));
    printf("crash: reading address %p\n", (void *)p);
    return *p;
}
