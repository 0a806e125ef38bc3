"""One streamer's page (GET /ui/streamers/{streamer_id}): its clips, its schedule tier, its last jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from producer import queries
from producer.api.errors import ApiError
from producer.api.validation import query
from producer.clip_search import ClipFilter, clips_page
from producer.dashboard.backfill import streamer_backfill_section
from producer.dashboard.clips import HEADERS, STYLE, clips_table
from producer.dashboard.html import (
    JOB_HEADERS,
    JOB_NUMERIC,
    badge,
    cards,
    esc,
    job_cells,
    link,
    number,
    page,
    stamp,
    table,
    url,
)
from producer.dashboard.pages import _due, _tier  # the streamers list's own rendering of the schedule
from producer.dashboard.twitch_links import twitch_url
from shared.ports import Row

if TYPE_CHECKING:
    from producer.dashboard.session import Viewer

CLIPS_SHOWN = 10
JOBS_SHOWN = 10
MAX_ID = 100
NEVER = '<span class="muted">never</span>'


async def streamer_page(request: Request, viewer: Viewer) -> Response:
    """Its facts and schedule, its newest and most viewed clips (deleted ones aside), its last jobs."""
    query(request, ())
    streamer_id = str(request.path_params["streamer_id"])
    context = viewer.context
    db, now = context.ports.db, context.ports.clock.now()
    row = await queries.streamer(db, streamer_id) if len(streamer_id) <= MAX_ID else None
    if row is None:
        raise ApiError(404, f"no streamer has id {streamer_id[:60]!r}")
    newest, _ = await clips_page(db, ClipFilter(streamer_id=streamer_id), limit=CLIPS_SHOWN)
    viewed, _ = await clips_page(db, ClipFilter(streamer_id=streamer_id, sort="views"), limit=CLIPS_SHOWN)
    jobs = await queries.streamer_jobs(db, streamer_id, JOBS_SHOWN)
    stored = await queries.streamer_clip_count(db, streamer_id)
    channel = twitch_url(f"https://www.twitch.tv/{row['login']}")
    body = (
        f"<style>{STYLE}</style>"
        f'<h1>{esc(row["display_name"] or row["login"])} <span class="muted">{esc(row["login"])} · '
        f"{esc(row['id'])}</span>{'' if row['active'] else ' ' + badge('deactivated')}</h1>"
        + (f"<p>{link(channel, 'Channel on Twitch', external=True)}</p>" if channel else "")
        + cards(
            [
                ("clips_stored", "clips stored", number(stored)),
                ("failure_streak", "failure streak", number(row["failure_streak"])),
                ("tier", "schedule tier", row["tier"]),
            ]
        )
        + table(
            ["", ""],
            [
                ["schedule", _tier(row["tier"], context.settings.tiers)],
                ["next due", _due(row["next_crawl_at"], now) if row["active"] else NEVER],
                # The watermark is a window's end, which can lie ahead of a clock: shown as it is stored.
                ["crawled through", esc(row["crawled_through"] or "not yet")],
                ["last success", stamp(row["last_success_at"], now)],
                ["last failure", stamp(row["last_failure_at"], now)],
                ["last error", f'<span class="error">{esc(row["last_error"] or "")}</span>'],
                ["added", stamp(row["added_at"], now)],
            ],
            attrs=' data-table="facts"',
        )
        + '<div class="grid"><section><h2>Newest clips</h2>'
        + clips_table(newest, now, name="newest-clips", streamer_column=False)
        + "</section><section><h2>Most viewed clips</h2>"
        + clips_table(viewed, now, name="viewed-clips", streamer_column=False)
        + "</section></div>"
        + f"<p>{link(url('/ui/clips', streamer=streamer_id), 'All its clips, with filters →')}</p>"
        + await streamer_backfill_section(db, streamer_id)
        + "<h2>Last jobs</h2>"
        + _jobs(jobs, now)
    )
    return page(str(row["display_name"] or row["login"]), body, csrf=viewer.csrf, headers=HEADERS)


def _jobs(jobs: list[Row], now: float) -> str:
    rows = [
        [
            link(f"/ui/runs/{j['run_id']}", j["run_id"]),
            esc(j["run_kind"] or ""),
            *job_cells(j, now),
        ]
        for j in jobs
    ]
    headers = [
        "run",
        "kind",
        *JOB_HEADERS,
    ]
    return table(
        headers, rows, numeric=JOB_NUMERIC, empty="No jobs yet.", attrs=' data-table="streamer-jobs"'
    )
