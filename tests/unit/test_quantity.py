"""Resource quantities: Kubernetes' parser (values, suffixes, rounding), its errors, canonical text."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apimachinery.quantity import (
    BINARY_SI,
    DECIMAL_EXPONENT,
    DECIMAL_SI,
    FORMAT_ERROR,
    SUFFIX_ERROR,
    QuantityError,
    canonical,
    format_quantity,
    milli_value,
    parse,
    parse_quantity,
    value,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500m", "0.5"),
        ("1", "1"),
        ("1.5", "1.5"),
        ("64Mi", "67108864"),
        ("1Gi", "1073741824"),
        ("1e3", "1000"),
        ("2k", "2000"),
        ("100M", "100000000"),
        ("0.1", "0.1"),
        ("+1", "1"),
        ("-1.5", "-1.5"),
        ("1E", "1000000000000000000"),
        ("1Ki", "1024"),
        ("250u", "0.00025"),
        ("3n", "0.000000003"),
        ("12e-1", "1.2"),
        ("1E3", "1000"),
        (".5", "0.5"),
        ("1.", "1"),
        ("0", "0"),
        ("00100", "100"),
    ],
)
def test_parse_values(text: str, expected: str) -> None:
    assert parse_quantity(text) == Decimal(expected)


@pytest.mark.parametrize(("number", "expected"), [(2, "2"), (0.5, "0.5"), (1.0, "1"), (1e-05, "0.00001")])
def test_parse_yaml_numbers(number: float, expected: str) -> None:
    assert parse_quantity(number) == Decimal(expected)


@pytest.mark.parametrize("text", ["abc", "1.2.3", "10Mib", "", "Mi", " 1", "1 ", "--1", "e3", "1.5.", "1,5"])
def test_malformed_quantities_get_kubernetes_message(text: str) -> None:
    with pytest.raises(QuantityError) as info:
        parse_quantity(text)
    assert str(info.value) == FORMAT_ERROR
    assert str(info.value) == (
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


@pytest.mark.parametrize("text", ["1K", "1m3", "1e", "1i", "1KiKi", "1Mm", "1e+"])
def test_unknown_suffix_is_a_suffix_error(text: str) -> None:
    # Well-shaped, but the letters are not a suffix Kubernetes knows ("1K": kilo is a small k).
    with pytest.raises(QuantityError) as info:
        parse_quantity(text)
    assert str(info.value) == SUFFIX_ERROR


def test_quantity_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_quantity("x")
    with pytest.raises(QuantityError):
        parse_quantity(True)  # type: ignore[arg-type]
    with pytest.raises(QuantityError):
        parse_quantity(float("inf"))


def test_values_round_up_to_nano_precision() -> None:
    # Asking for a tiny bit of something means asking for some of it.
    assert parse_quantity("0.0000000001") == Decimal("0.000000001")
    assert parse_quantity("1.0000000001") == Decimal("1.000000001")
    assert parse_quantity("-0.0000000001") == Decimal("-0.000000001")


def test_format_follows_the_suffix() -> None:
    assert parse("64Mi").format == BINARY_SI
    assert parse("500m").format == DECIMAL_SI
    assert parse("7").format == DECIMAL_SI
    assert parse("1e3").format == DECIMAL_EXPONENT


def test_milli_value_and_value_round_up() -> None:
    assert milli_value("500m") == 500
    assert milli_value("1") == 1000
    assert milli_value("0.1") == 100
    assert milli_value("1.0001") == 1001  # 1000.1 millis rounds up
    assert milli_value("3n") == 1
    assert value("1.5") == 2
    assert value("1Ki") == 1024
    assert value("64Mi") == 64 * 1024 * 1024
    assert value("100m") == 1
    assert value(Decimal("2")) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1000m", "1"),
        ("1500m", "1500m"),
        ("1.5", "1500m"),
        ("0.1", "100m"),
        ("15000", "15k"),
        ("1500", "1500"),
        ("1536Mi", "1536Mi"),
        ("1.5Gi", "1536Mi"),
        ("2048Ki", "2Mi"),
        ("0.5Ki", "512"),
        ("1e3", "1e3"),
        ("12e-1", "1200e-3"),
        ("-1.5", "-1500m"),
        ("0", "0"),
        ("0Mi", "0"),
        ("100M", "100M"),
        ("0.0000000001", "1n"),
    ],
)
def test_canonical_text(text: str, expected: str) -> None:
    assert canonical(text) == expected
    assert str(parse(text)) == expected


def test_format_quantity_of_values() -> None:
    assert format_quantity(Decimal("0.25")) == "250m"
    assert format_quantity(Decimal(3 * 1024**3), BINARY_SI) == "3Gi"
    assert format_quantity(Decimal("1.5"), BINARY_SI) == "1500m"  # fractions fall back to decimal
    assert format_quantity(Decimal(10) ** 21) == "1000E"  # beyond exa the mantissa grows
    assert format_quantity(2) == "2"
    assert format_quantity("64Mi", BINARY_SI) == "64Mi"
