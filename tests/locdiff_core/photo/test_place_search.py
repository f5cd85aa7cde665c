"""Finding a place by name in the shipped GeoNames list: accents and case folded, qualifiers
by region or country, ranking by kind of match then population, a clear "no match"."""

import pytest

from locdiff_core.photo.place_search import fold, search_places


def labels(query: str, limit: int = 3) -> list[str]:
    return [p.label() for p in search_places(query, limit).places]


def test_a_town_is_found_with_its_position():
    (arezzo,) = search_places("Arezzo", 1).places
    assert arezzo.label() == "Arezzo, Tuscany, Italy"
    assert arezzo.lat == pytest.approx(43.46, abs=0.05) and arezzo.lon == pytest.approx(
        11.88, abs=0.05
    )


def test_the_biggest_of_a_name_comes_first_and_qualifiers_narrow_it():
    assert labels("Paris")[0] == "Paris, Île-de-France, France"
    assert labels("paris, texas") == ["Paris, Texas, United States"]
    assert all(x.endswith("United States") for x in labels("Paris, US"))
    assert labels("Sydney, Australia")[0] == "Sydney, New South Wales, Australia"


def test_case_accents_and_punctuation_do_not_matter():
    assert labels("koln")[0] == labels("Köln")[0] == "Köln, North Rhine-Westphalia, Germany"
    assert labels("saint etienne")[0] == "Saint-Étienne, Auvergne-Rhône-Alpes, France"
    assert fold("  Saint-Étienne ") == "saint etienne" and fold("Straße") == "strasse"


def test_whole_names_before_beginnings_before_later_words():
    found = labels("york", 10)
    assert found[0] == "York, England, United Kingdom"
    assert any(x.startswith("New York City") for x in labels("new york"))
    later = labels("elba", 50)  # each holds "elba" at the start of a word of its name
    assert later and all("elba" in fold(x.split(",")[0]) for x in later)


def test_no_match_says_so():
    result = search_places("Piazza Grande")
    assert result.places == ()
    assert result.message.startswith("no town or city called 'Piazza Grande'")
    assert search_places("Arezzo, Chile").places == ()
    assert "in chile" in search_places("Arezzo, Chile").message
    assert search_places("  ").message.startswith("type a place name")
