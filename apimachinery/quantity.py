"""Kubernetes resource quantities ("500m", "1.5", "64Mi", "1e3"): parsing, comparing, printing.

A quantity is an exact decimal number. Parsing follows Kubernetes' ``resource.ParseQuantity``:
an optional sign, digits with an optional fraction, then one suffix, which is a decimal SI
prefix (``n u m k M G T P E``), a binary one (``Ki Mi Gi Ti Pi Ei``) or a decimal exponent
(``e3``, ``E-2``). Values are rounded *up* (away from zero) to nano precision, as Kubernetes does,
on the theory that someone who asks for a tiny amount of something wants some of it.

The suffix also fixes how the quantity is printed back (its "format"): ``1536Mi`` stays binary,
``1500m`` is printed as ``1500m`` and ``1000m`` as ``1``; :func:`format_quantity` gives the same
canonical text Kubernetes writes, which is what error messages and ``kubectl describe`` show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_UP, Context, Decimal, InvalidOperation, localcontext

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

FORMAT_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
SUFFIX_ERROR = "unable to parse quantity's suffix"

# Sign, integer digits, optional fraction, then the suffix: prefix letters, an optional sign and
# digits (the exponent of "e3"). Which suffixes mean something is decided afterwards, so a
# well-shaped but unknown suffix ("1K", "1m3") gets the suffix error, as in Kubernetes.
_SHAPE = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?([eEinumkKMGTP]*[-+]?[0-9]*)")

_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT = {v: k for k, v in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_STEPS = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]

_NANO = Decimal("1e-9")
# Quantities are exact; a wide context keeps arithmetic on them from rounding silently.
_CTX = Context(prec=4096, Emax=10**9, Emin=-(10**9))
MAX_EXPONENT = 1000

QuantityLike = str | int | float | Decimal


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity (the message is Kubernetes' own)."""


@dataclass(frozen=True)
class Quantity:
    """A parsed quantity: its exact value and the format its suffix implies."""

    value: Decimal
    format: str = DECIMAL_SI

    def __str__(self) -> str:
        return format_quantity(self.value, self.format)


def _interpret_suffix(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) of a suffix, or QuantityError for an unknown one."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        exp = suffix[1:]
        # Go's strconv.ParseInt: an optional sign, then at least one digit and nothing else.
        if re.fullmatch(r"[+-]?[0-9]+", exp):
            return 10, int(exp), DECIMAL_EXPONENT
    raise QuantityError(SUFFIX_ERROR)


def _round_to_nano(value: Decimal) -> Decimal:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -9 and value != 0:
        with localcontext(_CTX):
            return value.quantize(_NANO, rounding=ROUND_UP)
    return value


def parse(s: QuantityLike) -> Quantity:
    """Parse a quantity; numbers (as YAML gives them) are read as their decimal text."""
    if isinstance(s, bool):
        raise QuantityError(FORMAT_ERROR)
    if isinstance(s, Decimal):
        if not s.is_finite():
            raise QuantityError(FORMAT_ERROR)
        return Quantity(_round_to_nano(s), DECIMAL_SI)
    if isinstance(s, int):
        return Quantity(Decimal(s), DECIMAL_SI)
    text = repr(s) if isinstance(s, float) else s
    if not isinstance(text, str) or not text:
        raise QuantityError(FORMAT_ERROR)
    m = _SHAPE.fullmatch(text)
    # The number part needs at least one digit or a '.', like the regular expression says.
    if m is None or (not m.group(2) and m.group(3) is None):
        raise QuantityError(FORMAT_ERROR)
    sign, whole, frac, suffix = m.group(1), m.group(2), m.group(3), m.group(4)
    base, exponent, fmt = _interpret_suffix(suffix)
    try:
        with localcontext(_CTX):
            number = Decimal(f"{whole or '0'}.{frac}") if frac else Decimal(whole or "0")
            number = number.scaleb(exponent) if base == 10 else number * (Decimal(2) ** exponent)
            if sign == "-":
                number = -number
    except (InvalidOperation, OverflowError) as e:  # an exponent too large to represent
        raise QuantityError(FORMAT_ERROR) from e
    if number == 0:
        number = Decimal(0)  # no "-0"
    if number.adjusted() > MAX_EXPONENT:
        # Far beyond any real amount, and its canonical text would be too long to print.
        raise QuantityError(f"quantities may not be larger than 1e{MAX_EXPONENT}")
    return Quantity(_round_to_nano(number), fmt)


def parse_quantity(s: QuantityLike) -> Decimal:
    """The exact value of a quantity: ``parse_quantity("500m") == Decimal("0.5")``."""
    return parse(s).value


def _as_decimal(q: QuantityLike) -> Decimal:
    return parse_quantity(q)


def _round_up_int(value: Decimal) -> int:
    """Round away from zero to an integer (Kubernetes' ScaledValue rounding)."""
    with localcontext(_CTX):
        return int(value.to_integral_value(rounding=ROUND_UP))


def milli_value(q: QuantityLike) -> int:
    """The quantity in thousandths, rounded up: ``milli_value("0.1") == 100`` (CPU millicores)."""
    with localcontext(_CTX):
        scaled = _as_decimal(q) * 1000
    return _round_up_int(scaled)


def value(q: QuantityLike) -> int:
    """The quantity as a whole number, rounded up: ``value("1.5") == 2``, ``value("1Ki") == 1024``."""
    return _round_up_int(_as_decimal(q))


def format_quantity(v: QuantityLike, fmt: str = DECIMAL_SI) -> str:
    """Kubernetes' canonical text of a value in a format.

    Decimal forms use an integer mantissa and an exponent that is a multiple of three
    (``1500m``, ``15k``, ``1500``); binary forms divide by 1024 while that stays exact
    (``1536Mi``), and fall back to decimal below 1024 or for fractions.
    """
    amount = _round_to_nano(v if isinstance(v, Decimal) else parse_quantity(v))
    if amount == 0:
        return "0"
    if fmt == BINARY_SI and -1024 < amount < 1024:
        fmt = DECIMAL_SI
    if fmt == BINARY_SI:
        if amount != amount.to_integral_value():
            fmt = DECIMAL_SI
        else:
            n = int(amount)
            steps = 0
            while steps < len(_BINARY_BY_STEPS) - 1 and n % 1024 == 0:
                n //= 1024
                steps += 1
            return f"{n}{_BINARY_BY_STEPS[steps]}"
    with localcontext(_CTX):
        sign, digits, exp = amount.normalize().as_tuple()
    assert isinstance(exp, int)
    mantissa = int("".join(map(str, digits)))
    while exp % 3:
        mantissa *= 10
        exp -= 1
    if fmt == DECIMAL_EXPONENT:
        suffix = f"e{exp}" if exp else ""
    else:
        while exp > 18:  # beyond exa there is no SI prefix: grow the mantissa instead
            mantissa *= 1000
            exp -= 3
        suffix = _DECIMAL_BY_EXPONENT[exp]
    return f"{'-' if sign else ''}{mantissa}{suffix}"


def canonical(s: QuantityLike) -> str:
    """A quantity re-printed the way Kubernetes stores it: ``canonical("1000m") == "1"``."""
    return str(parse(s))
