/*
 * text12.S — text.inc in mode 12h: 32 numbered lines, so that the picture scrolls.
 */
    .set MODE, 0x12
    .set LINES, 32
    .include "text.inc"
