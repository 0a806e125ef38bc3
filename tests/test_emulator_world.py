from __future__ import annotations

from local.clock import VirtualClock
from local.emulator import HelixWorld
from shared.timefmt import parse_rfc3339

NOW = 1_790_000_000.0
DAY_S = 86_400
CLIP_FIELDS = {
    "id": str,
    "url": str,
    "embed_url": str,
    "broadcaster_id": str,
    "broadcaster_name": str,
    "creator_id": str,
    "creator_name": str,
    "video_id": str,
    "game_id": str,
    "language": str,
    "title": str,
    "view_count": int,
    "created_at": str,
    "thumbnail_url": str,
    "duration": float,
    "is_featured": bool,
}


def make_world(seed: int = 1, now: float = NOW, **kwargs: object) -> tuple[HelixWorld, VirtualClock]:
    clock = VirtualClock(now)
    return HelixWorld(seed, clock=clock, **kwargs), clock  # type: ignore[arg-type]


def ids(clips: list[dict[str, object]]) -> list[object]:
    return [c["id"] for c in clips]


def test_same_seed_gives_same_clips() -> None:
    one, _ = make_world(seed=7)
    two, _ = make_world(seed=7)
    for streamer in one.all_streamers()[:20]:
        assert one.clips(streamer.id, NOW - DAY_S, NOW) == two.clips(streamer.id, NOW - DAY_S, NOW)
    assert [s.to_user() for s in one.all_streamers()] == [s.to_user() for s in two.all_streamers()]


def test_different_seed_gives_different_clips() -> None:
    one, _ = make_world(seed=1)
    two, _ = make_world(seed=2)
    bid = one.all_streamers()[0].id
    assert ids(one.clips(bid, NOW - DAY_S, NOW)) != ids(two.clips(bid, NOW - DAY_S, NOW))


def test_overlapping_windows_agree() -> None:
    world, _ = make_world()
    bid = world.all_streamers()[3].id
    start = NOW - 2 * DAY_S + 1234
    early = world.clips(bid, start, start + 9 * 3600)
    late = world.clips(bid, start + 5 * 3600, start + 20 * 3600)
    overlap = world.clips(bid, start + 5 * 3600, start + 9 * 3600)
    assert overlap
    in_overlap = [c for c in early if parse_rfc3339(c["created_at"]) >= start + 5 * 3600]
    assert in_overlap == overlap == late[: len(overlap)]
    assert world.clips(bid, start, start + 20 * 3600) == early + late[len(overlap) :]


def test_windows_respect_bounds() -> None:
    world, _ = make_world()
    bid = world.all_streamers()[0].id
    start, end = NOW - DAY_S + 17, NOW - 3 * 3600 - 5
    created = [parse_rfc3339(c["created_at"]) for c in world.clips(bid, start, end)]
    assert created and all(start <= t < end for t in created)
    assert created == sorted(created)


def test_clip_fields_match_helix() -> None:
    world, _ = make_world()
    clips = [c for s in world.all_streamers()[:50] for c in world.clips(s.id, NOW - 3 * DAY_S, NOW)]
    assert len({c["id"] for c in clips}) == len(clips) > 1000
    for clip in clips:
        for name, kind in CLIP_FIELDS.items():
            assert isinstance(clip[name], kind), (name, clip)
        assert clip["vod_offset"] is None or isinstance(clip["vod_offset"], int)
        assert clip["created_at"].endswith("Z")
        assert 5.0 <= clip["duration"] <= 60.0 and round(clip["duration"], 1) == clip["duration"]
        assert clip["url"].endswith(clip["id"])
    missing_video = sum(c["video_id"] == "" for c in clips) / len(clips)
    featured = sum(c["is_featured"] for c in clips) / len(clips)
    assert 0.10 < missing_video < 0.20
    assert 0.02 < featured < 0.08
    assert all(c["vod_offset"] is None for c in clips if c["video_id"] == "")


def test_a_day_of_200_streamers_holds_their_daily_rates() -> None:
    # How fast this enumeration runs is the benchmark's business (bench/), not a test's: timings flake here.
    world, _ = make_world()
    total = sum(len(world.clips(s.id, NOW - DAY_S, NOW)) for s in world.all_streamers())
    assert 200 * 10 < total < 200 * 30


def test_streamer_rates_are_within_range() -> None:
    world, _ = make_world(streamers=50, clips_per_day=(10, 30))
    rates = [s.clips_per_day for s in world.all_streamers()]
    assert all(10 <= r <= 30 for r in rates)
    assert len(set(rates)) > 40


def test_rate_override_and_silent_streamer() -> None:
    world, _ = make_world()
    busy, silent = world.all_streamers()[:2]
    world.set_rate(busy.id, 5000)
    world.set_rate(silent.id, 0)
    count = len(world.clips(busy.id, NOW - 2 * DAY_S, NOW - DAY_S))
    assert 4700 < count < 5300
    assert world.clips(silent.id, NOW - 7 * DAY_S, NOW) == []
    assert world.streamer_by_id(busy.id).clips_per_day == 5000  # type: ignore[union-attr]


def test_raising_the_rate_keeps_existing_clips() -> None:
    world, _ = make_world()
    bid = world.all_streamers()[0].id
    before = set(ids(world.clips(bid, NOW - DAY_S, NOW)))
    world.set_rate(bid, 200)
    assert before < set(ids(world.clips(bid, NOW - DAY_S, NOW)))


def test_view_counts_grow_with_time() -> None:
    world, clock = make_world()
    bid = world.all_streamers()[0].id
    before = {c["id"]: c["view_count"] for c in world.clips(bid, NOW - DAY_S, NOW)}
    clock.advance(600)
    after = {c["id"]: c["view_count"] for c in world.clips(bid, NOW - DAY_S, NOW)}
    assert after.keys() == before.keys()
    assert all(after[k] >= before[k] for k in before)
    assert sum(after[k] > before[k] for k in before) > 0.75 * len(before)


def test_video_id_and_vod_offset_fill_in_late() -> None:
    world, clock = make_world()
    busy = world.all_streamers()[0].id
    world.set_rate(busy, 2000)
    window = (NOW - 15 * 60, NOW)
    young = world.clips(busy, *window)
    assert len(young) > 5
    assert all(c["video_id"] == "" and c["vod_offset"] is None for c in young)
    clock.advance(40 * 60)
    grown = world.clips(busy, *window)
    with_video = [c for c in grown if c["video_id"]]
    assert len(with_video) > 0.7 * len(grown)
    assert all(isinstance(c["vod_offset"], int) for c in with_video)


def test_clip_appears_only_after_its_delay() -> None:
    world, clock = make_world()
    busy = world.all_streamers()[0].id
    world.set_rate(busy, 5000)
    window = (NOW - 300, NOW + 600)
    now_visible = ids(world.clips(busy, *window))
    assert all(parse_rfc3339(c["created_at"]) < NOW - 5 for c in world.clips(busy, *window))
    clock.advance(120)
    later = ids(world.clips(busy, *window))
    assert set(now_visible) < set(later)
    # Clips created before NOW are all visible two minutes later, at most 120 s after creation.
    created_before_now = {c["id"] for c in world.clips(busy, *window) if parse_rfc3339(c["created_at"]) < NOW}
    assert set(now_visible) < created_before_now


def test_clip_lookup_by_id() -> None:
    world, _ = make_world()
    clip = world.clips(world.all_streamers()[5].id, NOW - DAY_S, NOW)[0]
    fresh, _ = make_world()
    assert fresh.clip(clip["id"]) == clip
    other_seed, _ = make_world(seed=99)
    assert other_seed.clip(clip["id"]) is None
    assert world.clip("NotAClip-xyz") is None
    assert world.clip(clip["id"][:-1] + ("A" if clip["id"][-1] != "A" else "B")) is None


def test_clip_lookup_respects_visibility() -> None:
    world, _ = make_world()
    clip = world.clips(world.all_streamers()[0].id, NOW - DAY_S, NOW)[-1]
    early, _ = make_world(now=parse_rfc3339(clip["created_at"]) + 1)
    assert early.clip(clip["id"]) is None


def test_streamer_lookups() -> None:
    world, _ = make_world(streamers=20)
    streamer = world.all_streamers()[12]
    assert streamer.login == "streamer00012" and streamer.display_name == "Streamer12"
    assert world.streamer_by_login("STREAMER00012") == streamer
    assert world.streamer_by_id(streamer.id) == streamer
    assert world.streamer_by_login("nobody") is None and world.streamer_by_id("1") is None
    assert world.clips("1", NOW - DAY_S, NOW) == []
