"""The streamers API: list and page, add by login through Get Users, deactivate."""

from __future__ import annotations

from local.emulator.app import helix_error
from tests import api_support
from tests.api_support import ApiFactory

make_api = api_support.make_api  # the fixture, shared by the API, dashboard and notification tests


async def test_streamers_are_listed_by_login_in_pages(make_api: ApiFactory) -> None:
    api = await make_api(5)
    whole = (await api.get("/streamers")).json()
    logins = [s["login"] for s in whole["streamers"]]
    assert logins == sorted(logins) and len(logins) == 5 and whole["next_after"] is None
    assert all(s["active"] is True and s["failure_streak"] == 0 for s in whole["streamers"])
    paged: list[str] = []
    params: dict[str, object] = {"limit": 2}
    while True:
        page = (await api.get("/streamers", params=params)).json()
        paged += [s["login"] for s in page["streamers"]]
        if page["next_after"] is None:
            break
        params = {"limit": 2, "after": page["next_after"]}
    assert paged == logins
    bad = await api.get("/streamers", params={"after": "%%%"})
    assert bad.status_code == 422 and bad.json()["field"] == "after"
    flag = await api.get("/streamers", params={"active": "maybe"})
    assert flag.status_code == 422 and flag.json()["field"] == "active"


async def test_a_crawl_shows_in_the_streamers_last_success_and_failure_streak(make_api: ApiFactory) -> None:
    api = await make_api(2)
    await api.fail_streamer("10000000")
    api.failing.ids.add("10000000")
    await api.stack.runner.crawl()
    streamers = {s["id"]: s for s in (await api.get("/streamers")).json()["streamers"]}
    failing = streamers["10000000"]
    assert failing["failure_streak"] == 2 and failing["last_success_at"] is None
    assert failing["last_failure_at"] and "500" in failing["last_error"]
    healthy = next(s for i, s in streamers.items() if i != "10000000")
    assert healthy["failure_streak"] == 0 and healthy["last_success_at"] and healthy["last_error"] is None


async def test_adding_logins_reports_the_unknown_ones(make_api: ApiFactory) -> None:
    api = await make_api(3)
    await api.stack.db.run("DELETE FROM streamers")
    response = await api.post(
        "/streamers", json={"logins": ["Streamer00001", "streamer00002", "nobody_here", "streamer00001"]}
    )
    assert response.status_code == 200
    body = response.json()
    assert sorted(s["login"] for s in body["added"]) == ["streamer00001", "streamer00002"]
    assert body["unknown"] == ["nobody_here"]
    rows = await api.stack.db.all("SELECT login, active FROM streamers ORDER BY login")
    assert rows == [{"login": "streamer00001", "active": 1}, {"login": "streamer00002", "active": 1}]


async def test_logins_are_resolved_100_per_get_users_call(make_api: ApiFactory) -> None:
    api = await make_api(150)
    before = api.stack.emulator.requests["/helix/users"]
    logins = [s.login for s in api.stack.world.all_streamers()] + [f"ghost{i}" for i in range(30)]
    body = (await api.post("/streamers", json={"logins": logins})).json()
    assert len(body["added"]) == 150 and len(body["unknown"]) == 30
    assert api.stack.emulator.requests["/helix/users"] - before == 2  # 180 logins: 100 + 80


async def test_adding_streamers_checks_its_input(make_api: ApiFactory) -> None:
    api = await make_api(1)
    cases = [
        ({}, "logins", "required"),
        ({"logins": []}, "logins", "between 1 and 1,000"),
        ({"logins": ["a"] * 1001}, "logins", "between 1 and 1,000"),
        ({"logins": "streamer00000"}, "logins", "array"),
        ({"logins": ["ok_login", "no spaces"]}, "logins[1]", "not a Twitch login: 'no spaces'"),
        ({"logins": ["x" * 26]}, "logins[0]", "not a Twitch login"),
        ({"logins": [7]}, "logins[0]", "non-empty string"),
        ({"logins": ["a"], "active": True}, "active", "unknown field"),
    ]
    for body, field, words in cases:
        response = await api.post("/streamers", json=body)
        assert response.status_code == 422, body
        assert response.json()["field"] == field and words in response.json()["message"], response.json()
    empty = await api.post("/streamers")
    assert empty.status_code == 422 and empty.json()["field"] == "body"


async def test_adding_streamers_needs_twitch(make_api: ApiFactory) -> None:
    offline = await make_api(1, with_http=False)
    response = await offline.post("/streamers", json={"logins": ["streamer00000"]})
    assert response.status_code == 503
    api = await make_api(1)
    api.use(settings=api.context.settings.with_(twitch_client_secret=""))
    await api.stack.db.run("DELETE FROM app_tokens")  # nothing cached: a token must be minted
    response = await api.post("/streamers", json={"logins": ["streamer00000"]})
    assert response.status_code == 503 and "TWITCH_CLIENT_SECRET" in response.json()["message"]


async def test_a_twitch_failure_answers_502(make_api: ApiFactory) -> None:
    api = await make_api(1)
    api.failing.users_error = helix_error(400, "Malformed query params.")
    response = await api.post("/streamers", json={"logins": ["streamer00000"]})
    assert response.status_code == 502 and "Malformed query params" in response.json()["message"]


async def test_deactivating_a_streamer_keeps_its_clips_and_stops_its_crawls(make_api: ApiFactory) -> None:
    api = await make_api(2)
    await api.stack.runner.crawl()
    count = "SELECT count(*) AS n FROM clips WHERE broadcaster_id = '10000000'"
    clips = await api.stack.db.first(count)
    assert clips["n"] > 0
    response = await api.delete("/streamers/10000000")
    assert response.status_code == 200
    assert response.json()["active"] is False and response.json()["login"] == "streamer00000"
    assert await api.stack.db.first(count) == clips
    kicked = (await api.post("/runs")).json()
    assert kicked["jobs"] == 1
    listed = (await api.get("/streamers", params={"active": "false"})).json()["streamers"]
    assert [s["id"] for s in listed] == ["10000000"]
    missing = await api.delete("/streamers/nope")
    assert missing.status_code == 404 and "'nope'" in missing.json()["message"]
