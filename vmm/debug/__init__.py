"""Stage tracking, the stepping debugger, the gdb remote stub and traces."""
