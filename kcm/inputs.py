"""Checking numbers and names where they enter kcm (flags, environment, files).

Pure functions; each returns the value or raises InputError with a message that
names what was wrong. Bounds are what makes sense for the quantity, and keep every
value inside what the kernel and Python accept (a 5,000-digit number or 1e300
seconds is an error here, not a traceback later).
"""

from kcm.errors import InputError

MAX_SECONDS = 7 * 86400.0
"""The longest interval, timeout or age kcm accepts: a week."""
MAX_COUNT = 16384
"""The largest count of CPUs, cores or CPU lists (kcm's CPU ids stop at 16383)."""
MAX_PID = 4194304
"""PID_MAX_LIMIT on 64-bit Linux."""


def whole_number(text: str, what: str, minimum: int = 0, maximum: int = MAX_COUNT) -> int:
    """A decimal whole number in [minimum, maximum]; ``what`` names it in errors."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()):
        raise InputError(f"{what} must be a whole number, not {_show(text)}")
    if len(value) > len(str(maximum)) or not minimum <= int(value) <= maximum:
        raise InputError(f"{what} must be between {minimum} and {maximum}, not {_show(text)}")
    return int(value)


def seconds(text: str, what: str, allow_zero: bool = False) -> float:
    """A finite number of seconds, positive (or zero) and at most a week."""
    value = text.strip()
    try:
        number = float(value) if len(value) <= 32 else float("nan")
    except ValueError:
        raise InputError(f"{what} must be a number of seconds, not {_show(text)}") from None
    low_ok = number >= 0 if allow_zero else number > 0
    if not (low_ok and number <= MAX_SECONDS):  # also false for nan
        least = "0" if allow_zero else "more than 0"
        raise InputError(f"{what} must be {least} and at most {MAX_SECONDS:g} seconds, "
                         f"not {_show(text)}")
    return number


def dns_label(text: str, what: str) -> str:
    """An RFC 1123 label (a namespace name): a-z, 0-9 and '-', at most 63 characters."""
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-")
    if not (0 < len(text) <= 63 and set(text) <= allowed and text[0] != "-" and text[-1] != "-"):
        raise InputError(f"{what} must be a DNS label (lower-case letters, digits and '-', "
                         f"at most 63 characters), not {_show(text)}")
    return text


def dns_subdomain(text: str, what: str) -> str:
    """An RFC 1123 subdomain (a resource-name prefix like kcm.dev): dot-separated labels."""
    if not (0 < len(text) <= 253):
        raise InputError(f"{what} must be a DNS name, not {_show(text)}")
    for label in text.split("."):
        dns_label(label, what)
    return text


def _show(text: str) -> str:
    """The offending text for an error line: quoted, control characters escaped, short."""
    shown = repr(text)
    return shown if len(shown) <= 40 else shown[:37] + "..."
