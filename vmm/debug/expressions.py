"""Addresses and values as a gdb user types them: ``0x7c00``, ``0000:7c00`` (seg:off),
``kmain``, ``kmain+0x10``, ``$rsp``, ``rip``, ``$pc`` (the linear pc), ``$sp``, ``$rsp+8``,
``*ADDR`` (gdb's ``break *0x7c00``) and sums and differences of those."""

from __future__ import annotations

import re

from vmm.cpu.state import GPR_NAMES
from vmm.debug.engine import DebugError

TOKEN = re.compile(r"\s*(?:(?P<op>[-+])|(?P<term>[^\s+-]+))")
ALIASES = {"sp": "rsp", "fp": "rbp"}
SIZED = {f"e{n[1:]}": n for n in GPR_NAMES[:8]}  # eax -> rax (read as 32 bits)


class ExpressionError(DebugError):
    pass


def register_value(state, name: str) -> int | None:
    """A register by gdb's name (with or without ``$``); None if there is none."""
    name = name.lstrip("$").lower()
    name = ALIASES.get(name, name)
    if name == "pc":
        return state.pc
    if name in state.gprs:
        return state.gprs[name]
    if name in SIZED:
        return state.gprs[SIZED[name]] & 0xFFFFFFFF
    if name in ("rip", "eip", "ip"):
        return state.rip
    if name in ("rflags", "eflags", "flags"):
        return state.rflags
    if name in ("cr0", "cr2", "cr3", "cr4", "cr8", "efer"):
        return getattr(state, name)
    if name in state.segments:
        return state.segments[name].selector
    if name in ("fs_base", "gs_base"):
        return state.segments[name[:2]].base
    return None


def evaluate(text: str, state, symbols) -> int:
    """The value of ``text``: terms joined by + and -."""
    text = text.strip()
    if text.startswith("*"):
        text = text[1:]
    if not text:
        raise ExpressionError("expected an address or expression")
    total, sign, expect_term = 0, 1, True
    position = 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"cannot read {text!r}")
        position = match.end()
        if match.group("op"):
            if expect_term:
                sign = -sign if match.group("op") == "-" else sign
                continue
            sign, expect_term = (1 if match.group("op") == "+" else -1), True
            continue
        if not expect_term:
            raise ExpressionError(f"{text!r}: expected + or - between terms")
        total += sign * term_value(match.group("term"), state, symbols)
        sign, expect_term = 1, False
    if expect_term:
        raise ExpressionError(f"{text!r} ends with an operator")
    return total & 0xFFFFFFFFFFFFFFFF


def term_value(term: str, state, symbols) -> int:
    if ":" in term:
        seg, _, off = term.partition(":")
        try:
            return (int(seg, 16) << 4) + int(off, 16)
        except ValueError:
            raise ExpressionError(f"{term!r}: expected seg:off in hex, e.g. 0000:7c00") from None
    try:
        return int(term.replace("_", ""), 0)
    except ValueError:
        pass
    if symbols is not None and symbols.lookup(term) is not None:
        return symbols.lookup(term)
    value = register_value(state, term)
    if value is not None and (term.startswith("$") or symbols is None or symbols.lookup(term) is None):
        return value
    if symbols is None:
        raise ExpressionError(f"{term!r} is not an address or register (pass --symbols ELF for names)")
    raise ExpressionError(f"{term!r} is not an address, register or known symbol")
