"""Typed coordinates: decimal degrees and DMS in, readable text out."""

import pytest

from app.model.coordinates import format_decimal, format_km, format_latlon, parse_coordinates

EIFFEL = (48.858222, 2.2945)


@pytest.mark.parametrize(
    "text",
    [
        "48.858222, 2.2945",
        "48.858222 2.2945",
        "48.858222N 2.2945E",
        "48°51'29.6\"N 2°17'40.2\"E",
        "48°51\u203229.6\u2033N, 2°17\u203240.2\u2033E",  # prime and double prime
        "N 48° 51' 29.6\" E 2° 17' 40.2\"",
        "2°17'40.2\"E 48°51'29.6\"N",  # longitude first, told by the letters
        "48 51 29.6 2 17 40.2",
        "N 48 51.4933, E 2 17.67",
    ],
)
def test_the_same_place_in_many_notations(text):
    lat, lon = parse_coordinates(text)
    assert lat == pytest.approx(EIFFEL[0], abs=1e-5) and lon == pytest.approx(EIFFEL[1], abs=1e-5)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("-33.8568, 151.2153", (-33.8568, 151.2153)),
        ("33°51'24.5\"S 151°12'55.1\"E", (-33.856806, 151.215306)),
        ("\u221233.5, \u221270.6", (-33.5, -70.6)),
        ("0°30'W, 51°28'N", (51.466667, -0.5)),
    ],
)
def test_southern_and_western_hemispheres(text, expected):
    assert parse_coordinates(text) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "no coordinates"),
        ("somewhere", "cannot read"),
        ("95, 10", "swap"),
        ("10, 200", "longitude 200"),
        ("48N 2N", "both"),
        ("48 51 70, 2 0", "seconds"),
        ("-48S, 2E", "not both"),
        ("1 2 3", "a latitude and a longitude"),
        ("48.5 30', 2", "whole numbers"),
    ],
)
def test_bad_input_says_what_to_fix(text, words):
    with pytest.raises(ValueError, match=words):
        parse_coordinates(text)


def test_formatting():
    assert format_latlon(-33.8568, 151.2153, 3) == "33.857° S, 151.215° E"
    assert parse_coordinates(format_decimal(*EIFFEL)) == pytest.approx(EIFFEL)
    assert [format_km(x) for x in (0.25, 12.34, 1234.0)] == ["250 m", "12.3 km", "1,234 km"]
