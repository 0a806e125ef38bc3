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
