from __future__ import annotations

import pytest

from shared.errors import InvalidInput
from shared.timefmt import align_down, align_up, normalise, parse_rfc3339, to_rfc3339


def test_round_trip_and_normalise() -> None:
    assert to_rfc3339(1_790_000_000.9) == "2026-09-21T14:13:20Z"
    assert parse_rfc3339("2026-09-21T14:13:20Z") == 1_790_000_000
    assert normalise("2026-09-21T16:13:20.123+02:00") == "2026-09-21T14:13:20Z"
    assert normalise("2026-09-21T14:13:20Z") == "2026-09-21T14:13:20Z"  # the stored form comes back as it is
    for shaped_but_other in ("2026-09-21 14:13:20Z", "2026-09-21T14:13:20z"):
        assert normalise(shaped_but_other) == "2026-09-21T14:13:20Z"
    with pytest.raises(InvalidInput):
        normalise("2026-19-21T14:13:20Z")  # the stored form's shape alone is not enough


@pytest.mark.parametrize("bad", ["", "yesterday", "2026-09-21T14:13:20", 5])
def test_bad_timestamps_are_named(bad: object) -> None:
    with pytest.raises(InvalidInput):
        parse_rfc3339(bad)  # type: ignore[arg-type]


def test_alignment() -> None:
    assert align_down(1234, 600) == 1200 and align_up(1234, 600) == 1800 and align_up(1200, 600) == 1200


@pytest.mark.parametrize("stored", ["0001-01-01T00:00:00Z", "0968-09-03T13:20:00Z", "1969-12-31T23:59:59Z"])
def test_every_year_round_trips_in_the_stored_form(stored: str) -> None:
    # strftime("%Y") writes year 968 as "968", a timestamp neither parse_rfc3339 nor a text sort accepts.
    assert to_rfc3339(parse_rfc3339(stored)) == stored


@pytest.mark.parametrize("out_of_range", [253_402_300_800, -62_135_596_801, float("nan"), float("inf")])
def test_epochs_past_the_calendar_are_refused(out_of_range: float) -> None:
    with pytest.raises((ValueError, OverflowError)):
        to_rfc3339(out_of_range)
