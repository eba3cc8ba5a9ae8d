"""Go duration syntax, and the chat workspace TTL setting built on it (spec §10).

Why Go's syntax: berth keeps the reference system's (Coder's) settings and tool
arguments, and those are Go ``time.Duration`` strings (``300ms``, ``90s``, ``2h30m``,
``1.5h``). Admins and models already write them, and stored values must read back the
same, so this module ports ``time.ParseDuration`` and ``Duration.String`` exactly,
including their error messages and the canonical form (``2h0m0s``).

Go counts nanoseconds; :class:`datetime.timedelta` counts microseconds. The ``*_ns``
functions are exact; :func:`parse_duration` truncates sub-microsecond parts toward
zero (``1500ns`` → 1µs), which no setting in berth can notice.
"""

from __future__ import annotations

import datetime as dt

from berth.errors import InvalidInput, Validation

__all__ = [
    "MAX_CHAT_WORKSPACE_TTL",
    "MIN_CHAT_WORKSPACE_TTL",
    "DurationError",
    "format_duration",
    "format_duration_ns",
    "parse_chat_workspace_ttl",
    "parse_duration",
    "parse_duration_ns",
    "validate_chat_workspace_ttl",
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

MIN_CHAT_WORKSPACE_TTL = dt.timedelta(minutes=1)
MAX_CHAT_WORKSPACE_TTL = dt.timedelta(days=30)


class DurationError(ValueError):
    """A string is not a Go duration; ``str()`` is Go's own error text."""


def _go_time_quote(s: str) -> str:
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


def _go_strconv_quote(s: str) -> str:
    """Go's ``%q`` (``strconv.Quote``), close enough for error messages."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in _GO_ESCAPES:
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
    return DurationError(f"time: invalid duration {_go_time_quote(orig)}")


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
            raise DurationError(f"time: missing unit in duration {_go_time_quote(orig)}")
        unit_name, s = s[:i], s[i:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise DurationError(
                f"time: unknown unit {_go_time_quote(unit_name)} in duration {_go_time_quote(orig)}"
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


def parse_chat_workspace_ttl(raw: str) -> dt.timedelta:
    """Read the stored ``chat_workspace_ttl`` setting (Coder's ``ParseChatWorkspaceTTL``).

    Empty means 0, which means "use the template's own TTL". A bad stored value raises
    :class:`ValueError`; the caller logs it and falls back to the template default.
    """
    if raw == "":
        return dt.timedelta(0)
    try:
        ttl = parse_duration(raw)
    except DurationError as err:
        raise ValueError(f"invalid duration {_go_strconv_quote(raw)}: {err}") from err
    if ttl < dt.timedelta(0):
        raise ValueError("duration must be non-negative")
    return ttl


def _ttl_refused(message: str) -> InvalidInput:
    return InvalidInput(message, validations=[Validation(field="value", detail=message)])


def validate_chat_workspace_ttl(raw: str) -> str:
    """Check a TTL an admin is setting; return the canonical string to store.

    The limits (0 or 1 minute to 30 days) match the reference system's admin endpoint:
    below a minute a chat's workspace would stop between two tool calls, and more than
    30 days defeats the point of an autostop. Surrounding blanks are ignored because
    they come from shells and forms, never from intent.
    """
    text = raw.strip()
    if text == "":
        return "0s"
    try:
        ns = parse_duration_ns(text)  # exact, so "500ns" is refused rather than read as 0
    except DurationError as err:
        raise _ttl_refused(str(err)) from err
    if ns < 0:
        raise _ttl_refused("Workspace TTL must be non-negative.")
    if 0 < ns < MINUTE:
        raise _ttl_refused("Workspace TTL must not be less than 1 minute.")
    if ns > 30 * 24 * HOUR:
        raise _ttl_refused("Workspace TTL must not exceed 30 days.")
    return format_duration_ns(ns)
