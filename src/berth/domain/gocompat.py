"""What berth keeps of Go: durations, ``%q`` quoting and UUID parsing, ported exactly.

Why: berth keeps the reference system's (Coder's) settings, tool arguments and error
texts, and those come from Go. Admins and models write Go ``time.Duration`` strings
(``300ms``, ``90s``, ``2h30m``, ``1.5h``) and stored values must read back the same, so
``time.ParseDuration`` and ``Duration.String`` are ported with their error messages and
canonical form (``2h0m0s``); tool errors quote values as Go's ``%q`` does and parse ids
as ``github.com/google/uuid`` does, with the same texts.

Go counts nanoseconds; :class:`datetime.timedelta` counts microseconds. The ``*_ns``
functions are exact; :func:`parse_duration` truncates sub-microsecond parts toward
zero (``1500ns`` → 1µs), which no setting in berth can notice.
"""

from __future__ import annotations

import datetime as dt
import uuid

__all__ = [
    "HOUR",
    "MINUTE",
    "DurationError",
    "format_duration",
    "format_duration_ns",
    "go_quote",
    "go_time_quote",
    "parse_duration",
    "parse_duration_ns",
    "parse_uuid",
]

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_UNITS: dict[str, int] = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "µs": MICROSECOND,  # U+00B5 micro sign
    "μs": MICROSECOND,  # U+03BC Greek small letter mu
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_LIMIT = 1 << 63  # Go's uint64 accumulator bound; int64 max is _LIMIT - 1


class DurationError(ValueError):
    """A string is not a Go duration; ``str()`` is Go's own error text."""


def go_time_quote(s: str) -> str:
    """Go's ``time.quote``: ASCII kept, other characters as ``\\x`` UTF-8 bytes."""
    out = ['"']
    for ch in s:
        if ord(ch) >= 0x80 or ch < " ":
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))
        else:
            out.append("\\" + ch if ch in '"\\' else ch)
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {
    "\a": r"\a",
    "\b": r"\b",
    "\f": r"\f",
    "\n": r"\n",
    "\r": r"\r",
    "\t": r"\t",
    "\v": r"\v",
    '"': r"\"",
    "\\": r"\\",
}


def go_quote(value: str | bytes) -> str:
    """Go's ``%q`` (``strconv.Quote``): printable characters kept, the rest escaped.

    Bytes that are not UTF-8 come out as ``\\x..``, as Go prints them.
    """
    text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
    out = ['"']
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF and isinstance(value, bytes):  # a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _invalid(orig: str) -> DurationError:
    return DurationError(f"time: invalid duration {go_time_quote(orig)}")


def _leading_digits(s: str) -> int:
    i = 0
    while i < len(s) and "0" <= s[i] <= "9":
        i += 1
    return i


def parse_duration_ns(s: str) -> int:
    """Parse a Go duration into integer nanoseconds, exactly as ``time.ParseDuration``."""
    orig = s
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise _invalid(orig)
    total = 0
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            raise _invalid(orig)
        n = _leading_digits(s)
        pre = n > 0
        value = 0
        for ch in s[:n]:
            if value > _LIMIT // 10:
                raise _invalid(orig)
            value = value * 10 + ord(ch) - 48
            if value > _LIMIT:
                raise _invalid(orig)
        s = s[n:]
        frac, scale, post = 0, 1.0, False
        if s and s[0] == ".":
            s = s[1:]
            n = _leading_digits(s)
            post = n > 0
            overflow = False
            for ch in s[:n]:
                if overflow or frac > (_LIMIT - 1) // 10:
                    overflow = True
                    continue
                nxt = frac * 10 + ord(ch) - 48
                if nxt > _LIMIT:
                    overflow = True
                    continue
                frac, scale = nxt, scale * 10
            s = s[n:]
        if not pre and not post:
            raise _invalid(orig)
        i = 0
        while i < len(s) and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        if i == 0:
            raise DurationError(f"time: missing unit in duration {go_time_quote(orig)}")
        unit_name, s = s[:i], s[i:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise DurationError(
                f"time: unknown unit {go_time_quote(unit_name)} in duration {go_time_quote(orig)}"
            )
        if value > _LIMIT // unit:
            raise _invalid(orig)
        value *= unit
        if frac > 0:
            # Go computes the fraction in float64; so do we, to agree to the nanosecond.
            value += int(float(frac) * (float(unit) / scale))
            if value > _LIMIT:
                raise _invalid(orig)
        total += value
        if total > _LIMIT:
            raise _invalid(orig)
    if neg:
        return -total
    if total > _LIMIT - 1:
        raise _invalid(orig)
    return total


def parse_duration(s: str) -> dt.timedelta:
    """Parse a Go duration (``90s``, ``2h30m``, ``1.5h``, ``-1h``, ``0``).

    Raises :class:`DurationError` with Go's message, e.g.
    ``time: unknown unit "d" in duration "1d"``.
    """
    ns = parse_duration_ns(s)
    micros = abs(ns) // MICROSECOND
    return dt.timedelta(microseconds=-micros if ns < 0 else micros)


def _frac(v: int, prec: int) -> tuple[str, int]:
    """Go's ``fmtFrac``: the fraction of ``v / 10**prec`` without trailing zeros."""
    digits: list[str] = []
    printing = False
    for _ in range(prec):
        v, digit = divmod(v, 10)
        printing = printing or digit != 0
        if printing:
            digits.append(str(digit))
    text = "." + "".join(reversed(digits)) if printing else ""
    return text, v


def format_duration_ns(ns: int) -> str:
    """Go's ``Duration.String()`` for a nanosecond count: ``2h0m0s``, ``1.5s``, ``300ms``."""
    u = abs(ns)
    sign = "-" if ns < 0 else ""
    if u == 0:
        return "0s"
    if u < SECOND:
        if u < MICROSECOND:
            return f"{sign}{u}ns"
        prec, unit = (3, "µs") if u < MILLISECOND else (6, "ms")
        frac, whole = _frac(u, prec)
        return f"{sign}{whole}{frac}{unit}"
    frac, secs = _frac(u, 9)
    text = f"{secs % 60}{frac}s"
    minutes = secs // 60
    if minutes > 0:
        text = f"{minutes % 60}m{text}"
        hours = minutes // 60
        if hours > 0:
            text = f"{hours}h{text}"
    return sign + text


def format_duration(td: dt.timedelta) -> str:
    """Go's canonical form of ``td``: ``2h0m0s``, ``1m30s``, ``300ms``, ``0s``, ``-1h0m0s``."""
    micros = (td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds
    return format_duration_ns(micros * MICROSECOND)


# --- UUIDs --------------------------------------------------------------------------------

_HEX_OFFSETS = (0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34)
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def parse_uuid(value: str) -> tuple[uuid.UUID | None, str]:
    """A UUID, or Go's parse error text (``github.com/google/uuid``'s ``uuid.Parse``).

    The same accepted forms (``xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx``, with
    ``urn:uuid:`` or braces, or 32 hex digits) and the same error texts; lengths are
    counted in bytes, as Go does.
    """
    data = value.encode("utf-8", "surrogatepass")
    match len(data):
        case 36:
            pass
        case 45:
            if data[:9].lower() != b"urn:uuid:":
                return None, f"invalid urn prefix: {go_quote(data[:9])}"
            data = data[9:]
        case 38:
            data = data[1:]
        case 32:
            if not all(b in _HEX_DIGITS for b in data):
                return None, "invalid UUID format"
            return uuid.UUID(data.decode()), ""
        case n:
            return None, f"invalid UUID length: {n}"
    if any(data[i] != ord("-") for i in (8, 13, 18, 23)):
        return None, "invalid UUID format"
    digits = b"".join(data[i : i + 2] for i in _HEX_OFFSETS)
    if not all(b in _HEX_DIGITS for b in digits):
        return None, "invalid UUID format"
    return uuid.UUID(digits.decode()), ""
