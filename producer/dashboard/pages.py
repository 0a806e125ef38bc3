"""The dashboard's pages and form actions, rendered on the server from the same reads as the API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from producer import auth, queries
from producer.api.errors import ApiError
from producer.api.runs import run_detail
from producer.api.streamers import decode_cursor, encode_cursor
from producer.api.validation import MAX_ID, choice_param, int_param, path_int, query
from producer.core import start_run
from producer.dashboard.backfill import run_backfill_section
from producer.dashboard.chart import runs_chart
from producer.dashboard.clips import GAIN_ESTIMATE
from producer.dashboard.html import (
    JOB_HEADERS,
    JOB_NUMERIC,
    cards,
    duration,
    esc,
    job_cells,
    link,
    number,
    page,
    plural,
    post_button,
    run_badge,
    stamp,
    table,
    twitch_link,
    url,
)
from producer.dashboard.run_times import RunTime, run_times
from producer.dashboard.session import Viewer, check_csrf, read_form, safe_next, token_matches
from producer.hot import hot_clips
from producer.retry_failed import RetryRefused, retry_failed
from producer.throttle import AuthThrottle, client_of
from shared.batch import run_statement
from shared.ports import Row
from shared.schedule import Tiers
from shared.states import JobStatus, RunStatus
from shared.timefmt import parse_rfc3339

if TYPE_CHECKING:
    from producer.context import AppContext

RUNS_SHOWN = 15
CHART_RUNS = 30
RUNS_PAGE = 50
JOBS_PAGE = 100
STREAMERS_PAGE = 100
CLIPS_SHOWN = 10


def login_form(next_path: str, error: str | None = None, status: int = 200) -> Response:
    notice = f'<p class="notice bad">{esc(error)}</p>' if error else ""
    body = (
        f"<h1>Log in</h1>{notice}<p>Enter the API token (<code>CLIPCRAWLER_API_TOKEN</code>).</p>"
        '<form method="post" action="/ui/login">'
        f'<input type="hidden" name="next" value="{esc(next_path)}">'
        '<p><input type="password" name="token" autocomplete="current-password" required autofocus '
        'aria-label="API token"></p><p><button type="submit">Log in</button></p></form>'
    )
    return page("Log in", body, status=status)


async def login(request: Request, context: AppContext, throttle: AuthThrottle) -> Response:
    """POST /ui/login: a right token sets the session cookie (derived from the token, never the token)."""
    auth.require_token(context.api_token)
    form = await read_form(request)
    target = safe_next(form.get("next"))
    client, now = client_of(request, context.behind_cloudflare), context.ports.clock.now()
    await throttle.refuse_if_blocked(context.ports.db, client, now)
    if not token_matches(form.get("token", ""), context.api_token):
        await throttle.failed(context.ports.db, client, now, context.failure_counter)
        return login_form(target, "That is not the API token.", status=401)
    session = auth.new_session(context.api_token, now)
    return RedirectResponse(
        target, status_code=303, headers={"Set-Cookie": auth.session_cookie_header(request, session)}
    )


async def logout(request: Request, viewer: Viewer) -> Response:
    """POST /ui/logout: ends the session server-side, so a copied cookie stops working too."""
    check_csrf(viewer, await read_form(request))
    if viewer.session is not None:
        context = viewer.context
        await auth.end_session(context.ports.db, viewer.session, context.api_token, context.ports.clock.now())
    return RedirectResponse(
        "/ui/login",
        status_code=303,
        headers={"Set-Cookie": auth.session_cookie_header(request, "", max_age=0)},
    )


async def overview(request: Request, viewer: Viewer) -> Response:
    """GET /: the latest runs and their chart, streamers needing attention, newest and hottest clips."""
    query(request, ())
    context = viewer.context
    db, now = context.ports.db, context.ports.clock.now()
    runs = await queries.runs_page(db, limit=CHART_RUNS)
    counts = await queries.streamer_counts(db)
    failing = await queries.failing_streamers(db, 10)
    newest = await queries.newest_clips(db, CLIPS_SHOWN, now)
    hot = (await run_statement(db, hot_clips(now, context.settings, CLIPS_SHOWN))).rows
    body = (
        '<h1>Runs</h1><div class="actions">'
        + post_button("/ui/kick", "Kick a run now", viewer.csrf, name="kick")
        + f'<span class="muted">crawls every active streamer ({number(counts["active"])})</span></div>'
        + runs_chart(runs)
        + _runs_table(runs[:RUNS_SHOWN], now, await run_times(db, runs[:RUNS_SHOWN], now))
        + (
            f"<p>{link(url('/ui/runs', before=runs[RUNS_SHOWN - 1]['id']), 'Older runs →')}</p>"
            if len(runs) > RUNS_SHOWN
            else ""
        )
        + "<h2>Streamers</h2>"
        + cards(
            [
                ("streamers_active", "active", number(counts["active"])),
                ("streamers_failing", "failing now", number(counts["failing"])),
                ("streamers_inactive", "deactivated", number(counts["inactive"])),
            ]
        )
        + _streamers_table(failing, now, empty="No streamer is failing.")
        + f"<p>{link('/ui/streamers', 'All streamers →')}</p>"
        + '<div class="grid"><section><h2>Hottest clips '
        + '<span class="muted">(views gained in 24 h, estimated)</span></h2>'
        + f'<p class="muted" data-label="hot-estimate">{esc(GAIN_ESTIMATE)}</p>'
        + _clips_table(hot, now, gained=True)
        + "</section><section><h2>Newest clips</h2>"
        + _clips_table(newest, now, gained=False)
        + "</section></div>"
    )
    return page("Overview", body, csrf=viewer.csrf)


async def runs_list(request: Request, viewer: Viewer) -> Response:
    """GET /ui/runs?before=: every run, newest first."""
    params = query(request, ("before",))
    before = int_param(params, "before", default=None, low=1, high=MAX_ID)
    now = viewer.context.ports.clock.now()
    runs = await queries.runs_page(viewer.context.ports.db, limit=RUNS_PAGE, before=before)
    more = (
        f"<p>{link(url('/ui/runs', before=runs[-1]['id']), 'Older runs →')}</p>"
        if len(runs) == RUNS_PAGE
        else ""
    )
    times = await run_times(viewer.context.ports.db, runs, now)
    return page("Runs", "<h1>Runs</h1>" + _runs_table(runs, now, times) + more, csrf=viewer.csrf)


async def run_page(request: Request, viewer: Viewer) -> Response:
    """GET /ui/runs/{run_id}?status=&after=: one run's counters, stop reasons and jobs."""
    params = query(request, ("status", "after", "kicked", "retried", "skipped"))
    run_id = path_int(request, "run_id")
    status = choice_param(params, "status", queries.JOB_STATUSES)
    after = int_param(params, "after", default=0, low=0, high=MAX_ID) or 0
    context = viewer.context
    now = context.ports.clock.now()
    row = await queries.run(context.ports.db, run_id)
    if row is None:
        raise ApiError(404, f"no run {run_id}")
    detail = run_detail(row, await queries.job_breakdown(context.ports.db, run_id), now)
    jobs = await queries.jobs_page(context.ports.db, run_id, status=status, limit=JOBS_PAGE, after=after)
    jobs_counts = detail["jobs"]
    time = (await run_times(context.ports.db, [row], now))[run_id]
    body = (
        f"<h1>Run {esc(run_id)} {run_badge(row)}</h1>"
        + _notices(params)
        + f'<p class="muted">{esc(row["kind"])} run opened {stamp(row["created_at"], now)}'
        + (f", finished {stamp(row['finished_at'], now)}" if row["finished_at"] else "")
        + "</p>"
        + cards(
            [
                ("jobs_total", "streamers", number(jobs_counts["total"])),
                ("jobs_done", "crawled", number(jobs_counts[JobStatus.DONE])),
                ("jobs_failed", "failed", number(jobs_counts[JobStatus.FAILED])),
                ("jobs_pending", "pending", number(jobs_counts["pending"])),
                ("clips_new", "new clips", number(detail["clips"]["new"])),
                ("clips_updated", "updated clips", number(detail["clips"]["updated"])),
                ("failure_rate", "failure rate", f"{detail['failure_rate']:.1%}"),
                ("duration", "working time", duration(time.working_s)),
            ]
            + (
                [("idle", "idle (finished, waiting for a retry)", duration(time.idle_s))]
                if time.idle_s
                else []
            )
        )
        + _retry_action(row, viewer)
        + await run_backfill_section(context.ports.db, run_id)
        + "<h2>Why jobs stopped</h2>"
        + table(
            ["stop reason", "jobs"],
            [[esc(reason), number(n)] for reason, n in detail["stop_reasons"].items()],
            numeric=[1],
            empty="No jobs.",
        )
        + f"<h2>Jobs</h2>{_job_filters(run_id, status, detail['jobs_by_status'])}"
        + _jobs_table(jobs, now)
        + (
            f"<p>{link(url(f'/ui/runs/{run_id}', status=status, after=jobs[-1]['id']), 'More jobs →')}</p>"
            if len(jobs) == JOBS_PAGE
            else ""
        )
    )
    return page(f"Run {run_id}", body, csrf=viewer.csrf)


async def streamers_list(request: Request, viewer: Viewer) -> Response:
    """GET /ui/streamers?after=: every streamer by login, with its last success and failure streak."""
    params = query(request, ("after",))
    after = decode_cursor(params["after"]) if "after" in params else None
    now = viewer.context.ports.clock.now()
    rows = await queries.streamers_page(viewer.context.ports.db, limit=STREAMERS_PAGE, after=after)
    more = (
        f"<p>{link(url('/ui/streamers', after=encode_cursor(rows[-1])), 'More streamers →')}</p>"
        if len(rows) == STREAMERS_PAGE
        else ""
    )
    body = _streamers_table(rows, now, tiers=viewer.context.settings.tiers)
    return page("Streamers", "<h1>Streamers</h1>" + body + more, csrf=viewer.csrf)


async def kick(request: Request, viewer: Viewer) -> Response:
    """POST /ui/kick: a manual run of every active streamer, then its page."""
    check_csrf(viewer, await read_form(request))
    context = viewer.context
    started = await start_run(context.ports, context.settings)
    return RedirectResponse(url(f"/ui/runs/{started.run_id}", kicked=started.jobs), status_code=303)


async def retry(request: Request, viewer: Viewer) -> Response:
    """POST /ui/runs/{run_id}/retry-failed: reopen the failed jobs, then back to the run."""
    check_csrf(viewer, await read_form(request))
    run_id = path_int(request, "run_id")
    context = viewer.context
    try:
        ports = context.ports
        retried = await retry_failed(ports.db, ports.queue, ports.clock, context.settings, run_id)
    except RetryRefused as exc:
        raise ApiError(exc.status, str(exc)) from None
    return RedirectResponse(
        url(f"/ui/runs/{run_id}", retried=len(retried.requeued), skipped=len(retried.skipped) or None),
        status_code=303,
    )


def _notices(params: Mapping[str, str]) -> str:
    out = []
    for key, text in (
        ("kicked", "Run started: {} enqueued."),
        ("retried", "{} sent again."),
        ("skipped", "{} could not be retried (see the errors)."),
    ):
        raw = params.get(key)
        if raw is not None and raw.isdigit():
            jobs = plural(int(raw), "job") if key == "kicked" else plural(int(raw), "failed job")
            out.append(
                f'<p class="notice{" bad" if key == "skipped" else ""}" data-notice="{key}">'
                f"{esc(text.format(jobs))}</p>"
            )
    return "".join(out)


def _retry_action(row: Row, viewer: Viewer) -> str:
    if not int(row["jobs_failed"]):
        return ""
    if row["status"] == RunStatus.ENQUEUING:
        return '<p class="muted">Failed jobs can be retried once the run is done enqueuing.</p>'
    label = f"Retry {plural(row['jobs_failed'], 'failed job')}"
    button = post_button(f"/ui/runs/{row['id']}/retry-failed", label, viewer.csrf, name="retry")
    return f'<div class="actions">{button}</div>'


def _job_filters(run_id: int, current: str | None, counts: dict[str, int]) -> str:
    items = [(None, "all", sum(counts.values()))] + [(s, s, counts.get(s, 0)) for s in queries.JOB_STATUSES]
    links = []
    for status, label, n in items:
        css = ' class="current"' if status == current else ""
        href = esc(url(f"/ui/runs/{run_id}", status=status))
        links.append(f'<a{css} href="{href}">{esc(label)} ({n:,})</a>')
    return f'<p class="filters">{"".join(links)}</p>'


def _runs_table(runs: list[Row], now: float, times: Mapping[int, RunTime]) -> str:
    counted = ("jobs_total", "jobs_done", "jobs_failed", "clips_new", "clips_updated", "helix_calls")
    rows = [
        [
            link(f"/ui/runs/{r['id']}", r["id"]),
            run_badge(r),
            esc(r["kind"]),
            stamp(r["created_at"], now),
            _working(times[int(r["id"])]),
            *(number(r[k]) for k in counted),
        ]
        for r in runs
    ]
    return table(
        [
            "run",
            "status",
            "kind",
            "opened",
            "working time",
            "streamers",
            "crawled",
            "failed",
            "new clips",
            "updated",
            "Helix calls",
        ],
        rows,
        numeric=[5, 6, 7, 8, 9, 10],
        empty="No runs yet.",
        attrs=' data-table="runs"',
    )


def _working(time: RunTime) -> str:
    """Working time, and apart from it any idle time (finished, waiting for a retry of failed jobs)."""
    idle = f'<br><span class="idle">+ {esc(duration(time.idle_s))} idle</span>' if time.idle_s else ""
    return esc(duration(time.working_s)) + idle


def _jobs_table(jobs: list[Row], now: float) -> str:
    rows = [
        [
            esc(j["id"]),
            (
                f"{esc(j['display_name'] or j['login'] or j['streamer_id'])} "
                f'<span class="muted">{esc(j["streamer_id"])}</span>'
            ),
            *job_cells(j, now),
        ]
        for j in jobs
    ]
    return table(
        [
            "job",
            "streamer",
            *JOB_HEADERS,
        ],
        rows,
        numeric=JOB_NUMERIC,
        empty="No jobs match.",
        attrs=' data-table="jobs"',
    )


def _streamers_table(
    rows: list[Row], now: float, empty: str = "No streamers yet.", *, tiers: Tiers | None = None
) -> str:
    """With `tiers`, also each streamer's place in the adaptive schedule: how often, and when next."""
    cells = [
        [
            (
                f"{link('/ui/streamers/' + str(s['id']), s['display_name'] or s['login'])} "
                f'<span class="muted">{esc(s["login"])} · {esc(s["id"])}</span>'
            ),
            "yes" if s["active"] else '<span class="muted">no</span>',
            stamp(s["last_success_at"], now),
            number(s["failure_streak"]),
            stamp(s["last_failure_at"], now) if s["last_failure_at"] else "",
            f'<span class="error">{esc(s["last_error"] or "")}</span>',
        ]
        + ([_tier(s["tier"], tiers), _due(s["next_crawl_at"], now)] if tiers is not None else [])
        for s in rows
    ]
    headers = ["streamer", "active", "last success", "failure streak", "last failure", "last error"]
    return table(
        headers + (["tier", "next due"] if tiers is not None else []),
        cells,
        numeric=[3],
        empty=empty,
        attrs=' data-table="streamers"',
    )


def _tier(tier: int | None, tiers: Tiers) -> str:
    if tier is None or not 0 <= tier < len(tiers.every_hours):
        return '<span class="muted">–</span>'
    return f'{tier} <span class="muted">every {tiers.every_hours[tier]} h</span>'


def _due(next_crawl_at: str | None, now: float) -> str:
    """'in 2 h 00 min', or 'next crawl' when due (or never scheduled: a new streamer is due at once)."""
    if not next_crawl_at:
        return "next crawl"
    wait = parse_rfc3339(next_crawl_at) - now
    label = "next crawl" if wait <= 0 else f"in {duration(wait)}"
    return f'<time datetime="{esc(next_crawl_at)}" title="{esc(next_crawl_at)}">{esc(label)}</time>'


def _clips_table(rows: list[Row], now: float, *, gained: bool) -> str:
    cells = []
    for c in rows:
        cell = [
            twitch_link(c["url"], c["title"] or c["id"]),
            esc(c["broadcaster_name"]),
            number(c["view_count"]),
        ]
        if gained:
            cell.append(number(c["views_gained"]))
        cell.append(stamp(c["created_at"], now))
        cells.append(cell)
    headers = ["clip", "streamer", "views"] + (["gained"] if gained else []) + ["created"]
    return table(
        headers,
        cells,
        numeric=[2, 3] if gained else [2],
        empty="No clips yet.",
        attrs=f' data-table="{"hot" if gained else "newest"}-clips"',
    )
