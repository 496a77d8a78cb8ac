/*
 * text13.S — text.inc in mode 13h: 27 numbered lines, so that the picture scrolls.
 */
    .set MODE, 0x13
    .set LINES, 27
    .include "text.inc"
