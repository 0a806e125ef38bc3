from __future__ import annotations

import json

import pytest

from shared.errors import MalformedMessage
from shared.messages import CrawlJob, body_text, decode, preview


def test_round_trip() -> None:
    job = CrawlJob(run_id=3, job_id=7, streamer_id="123", seq=2)
    assert decode(job.encode()) == job
    assert decode(json.dumps(job.encode())) == job
    assert decode(json.dumps(job.encode()).encode()) == job


def test_seq_is_optional() -> None:
    assert decode({"v": 1, "type": "crawl", "run_id": 1, "job_id": 2, "streamer_id": "9"}).seq == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        ([1, 2], "must be a JSON object"),
        (None, "must be a JSON object"),
        ({"type": "crawl"}, "unsupported message version None"),
        ({"v": 2, "type": "crawl"}, "unsupported message version 2"),
        ({"v": 1, "type": "paint"}, "unknown message type 'paint'"),
        ({"v": 1, "type": "crawl", "run_id": 1, "job_id": 2}, "lacks 'streamer_id'"),
        ({"v": 1, "type": "crawl", "run_id": "1", "job_id": 2, "streamer_id": "9"}, "'run_id' must be int"),
        ({"v": 1, "type": "crawl", "run_id": True, "job_id": 2, "streamer_id": "9"}, "'run_id' must be int"),
        ({"v": 1, "type": "crawl", "run_id": -1, "job_id": 2, "streamer_id": "9"}, "must not be negative"),
        ({"v": 1, "type": "crawl", "run_id": 1, "job_id": 2, "streamer_id": " "}, "is empty"),
        ({"v": 1, "type": "crawl", "run_id": 1, "job_id": 2, "streamer_id": "9", "x": 1}, "unknown fields"),
    ],
)
def test_malformed_bodies_say_what_is_wrong(body: object, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        decode(body)


def deep_dict(levels: int) -> dict[str, object]:
    body: dict[str, object] = {}
    for _ in range(levels - 1):
        body = {"x": body}
    return body


CRAWL = {"v": 1, "type": "crawl", "run_id": 1, "job_id": 2, "streamer_id": "9"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        # What D1 cannot bind or store: found by the adversarial pass of issue 17.
        ({**CRAWL, "job_id": 10**20}, r"integer 100000000000000000000, beyond the exact range of D1"),
        ({**CRAWL, "run_id": 2**53}, "beyond the exact range"),
        (json.dumps({**CRAWL, "seq": 2**63}), "beyond the exact range"),
        ({**CRAWL, "streamer_id": "\ud800"}, r"lone surrogate '\\ud800'"),
        ('{"v": 1, "type": "crawl", "run_id": 1, "job_id": 2, "streamer_id": "\\udc80"}', "lone surrogate"),
        ({**CRAWL, "\udfff": 1}, "lone surrogate"),
        ("[" * 30_000 + "]" * 30_000, "nests 30000 levels deep, more than 8"),
        ('{"a":' * 20_000, "nests 20000 levels deep"),
        (deep_dict(5_000), "nests deeper than 8 levels"),
        ({**CRAWL, "v": True}, "unsupported message version True"),
        ({**CRAWL, "v": 1.0}, "unsupported message version 1.0"),
        (json.dumps({**CRAWL, "v": 1.0}), "unsupported message version 1.0"),
        (b"\xed\xa0\x80", "not UTF-8"),  # a surrogate, UTF-8-encoded: not valid UTF-8
        ("1" * 5_000, "not JSON"),  # past Python's digit limit for int()
        ('"' + '\\"' * 60_000, "not JSON"),  # an unterminated string of escapes: the depth scan stays linear
    ],
)
def test_what_the_store_cannot_hold_is_refused_with_a_reason(body: object, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        decode(body)


def test_the_largest_safe_integer_and_a_shallow_body_are_accepted() -> None:
    assert decode({**CRAWL, "job_id": 2**53 - 1}).job_id == 2**53 - 1
    assert decode({**CRAWL, "streamer_id": "é字😀"}).streamer_id == "é字😀"


def test_a_busy_count_is_carried_and_left_out_of_the_body_at_zero() -> None:
    assert "busy" not in CrawlJob(1, 2, "9").encode()
    assert decode(CrawlJob(1, 2, "9", seq=1, busy=3).encode()) == CrawlJob(1, 2, "9", 1, 3)


@pytest.mark.parametrize(
    "body",
    [
        deep_dict(5_000),
        [[[[["\ud800"]]]]],
        {"a": 10**400},
        b"\xff" * 10_000,
        "\ud800" * 10,
        {"k": float("nan")},
        object(),
    ],
)
def test_body_text_renders_anything_as_storable_text_and_never_raises(body: object) -> None:
    text = body_text(body)
    text.encode("utf-8")
    assert 0 < len(text) <= 4_000 and preview(body)
