"""The dashboard shows a backfill's progress per streamer: on its run page and on the streamer's page."""

from __future__ import annotations

from shared.timefmt import to_rfc3339
from tests import api_support
from tests.api_support import ApiFactory
from tests.test_dashboard import log_in, table_rows

make_api = api_support.make_api
DAY = 86_400


async def test_a_backfill_shows_the_window_reached_and_the_clips_found(make_api: ApiFactory) -> None:
    # A few pages an invocation on busy channels: the backfill is caught part-way.
    api = await make_api(2, external_limit=3, clips_per_day=(300, 400))
    now = api.stack.clock.now()
    window = {"from": to_rfc3339(now - 20 * DAY), "to": to_rfc3339(now - DAY)}
    response = await api.post("/runs", json={"backfill": window})
    run_id = response.json()["run_id"]
    seen: list[object] = []

    def stop_after_one(verdict: object) -> None:
        seen.append(verdict)
        if len(seen) == 1:
            api.stack.runner.stop()

    await api.stack.runner.drain(stop_after_one)
    jobs = (await api.get(f"/runs/{run_id}/jobs")).json()["jobs"]
    in_flight = [j for j in jobs if j["reached"]]
    assert in_flight and all(window["from"] <= j["reached"] < window["to"] for j in in_flight)
    await log_in(api)
    page = (await api.get(f"/ui/runs/{run_id}", token=None)).text
    rows = table_rows(page, "backfill")
    assert len(rows) == 2 and f"Backfill {window['from']} to {window['to']}" in page
    by_login = {r[0]: r for r in rows}
    for job in jobs:
        row = by_login[job["login"]]
        assert row[2] == (
            "not started"
            if not job["reached"] and job["status"] != "done"
            else "done"
            if job["status"] == "done"
            else "reached " + job["reached"][:16].replace("T", " ")
        )
        assert row[3] == f"{job['clips']['seen']:,}"
    streamer = (await api.get(f"/ui/streamers/{in_flight[0]['streamer_id']}", token=None)).text
    assert [r[0] for r in table_rows(streamer, "backfill")] == [str(run_id)]
    # A run that is no backfill has no such section.
    api.stack.clock.advance(DAY)
    plain = (await api.stack.runner.crawl()).run_id
    assert table_rows((await api.get(f"/ui/runs/{plain}", token=None)).text, "backfill") == []
