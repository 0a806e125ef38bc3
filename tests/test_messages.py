from __future__ import annotations

import json

import pytest

from shared.errors import MalformedMessage
from shared.messages import CrawlJob, decode


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
