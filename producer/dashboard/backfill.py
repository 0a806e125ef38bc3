"""The dashboard's backfill section: per streamer, the window a backfill reached and the clips it found."""

from __future__ import annotations

from producer.backfill_progress import reached, run_progress, streamer_backfills
from producer.dashboard.html import badge, esc, link, number, table
from shared.ports import Database, Row

SHOWN = 100


async def run_backfill_section(db: Database, run_id: int) -> str:
    """For a backfill run, its jobs' progress; "" for any other run."""
    jobs = await run_progress(db, [run_id], SHOWN)
    if not jobs or not jobs[0]["backfill_from"]:
        return ""
    return f"<h2>Backfill {esc(jobs[0]['crawl_from'])} to {esc(jobs[0]['crawl_to'])}</h2>" + _table(
        jobs, streamer_column=True
    )


async def streamer_backfill_section(db: Database, streamer_id: str) -> str:
    """A streamer's latest backfills and how far each got; "" if it never had one."""
    jobs = await streamer_backfills(db, streamer_id)
    return "<h2>Backfills</h2>" + _table(jobs, streamer_column=False) if jobs else ""


def _table(jobs: list[Row], *, streamer_column: bool) -> str:
    rows = [
        (
            [link(f"/ui/streamers/{j['streamer_id']}", j["login"] or j["streamer_id"])]
            if streamer_column
            else [link(f"/ui/runs/{j['run_id']}", j["run_id"])]
        )
        + [
            esc(f"{(j['crawl_from'] or '')[:10]} .. {(j['crawl_to'] or '')[:10]}"),
            esc(reached(j)),
            number(j["clips_seen"]),
            number(j["clips_new"]),
            number(j["pages"]),
            number(j["invocations"]),
            badge(j["status"]),
        ]
        for j in jobs
    ]
    headers = [
        "streamer" if streamer_column else "run",
        "range",
        "window reached",
        "clips found",
        "new",
        "pages",
        "invocations",
        "status",
    ]
    return table(headers, rows, numeric=[3, 4, 5, 6], attrs=' data-table="backfill"')
