"""Run completion: one structured log line and, when a webhook is configured, one Slack-compatible post."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from shared.budget import EXTERNAL, Budget
from shared.config import Settings
from shared.errors import BudgetExhausted
from shared.logs import EventLog, guard
from shared.metered import MeteredDatabase
from shared.ports import Row
from shared.timefmt import parse_rfc3339


@dataclass(frozen=True)
class RunReport:
    """The facts a finished run is announced with."""

    run_id: int
    kind: str = ""
    streamers: int = 0
    jobs_done: int = 0
    jobs_failed: int = 0
    clips_new: int = 0
    clips_updated: int = 0
    duration_s: float | None = None

    @classmethod
    def from_row(cls, row: Row) -> RunReport:
        duration = None
        if row.get("finished_at") and row.get("created_at"):
            duration = max(0.0, parse_rfc3339(row["finished_at"]) - parse_rfc3339(row["created_at"]))
        return cls(
            run_id=int(row["id"]),
            kind=str(row["kind"]),
            streamers=int(row["jobs_total"]),
            jobs_done=int(row["jobs_done"]),
            jobs_failed=int(row["jobs_failed"]),
            clips_new=int(row["clips_new"]),
            clips_updated=int(row["clips_updated"]),
            duration_s=duration,
        )


def run_link(public_url: str, run_id: int) -> str | None:
    """The dashboard page of a run, if the producer's public URL is known."""
    return f"{public_url.rstrip('/')}/ui/runs/{run_id}" if public_url else None


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "an unknown time"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def slack_payload(report: RunReport, link: str | None) -> dict[str, Any]:
    """An incoming-webhook body: `text` for any Slack-compatible receiver, `blocks` for Slack itself."""
    title = f"run {report.run_id}"
    named = f"<{link}|{title}>" if link else title
    outcome = "finished with failures" if report.jobs_failed else "finished"
    summary = (
        f"{report.streamers} streamers, {report.clips_new} new clips, {report.clips_updated} updated, "
        f"{report.jobs_failed} failed, in {format_duration(report.duration_s)}"
    )
    fields = [
        ("Streamers", report.streamers),
        ("Failed", report.jobs_failed),
        ("New clips", report.clips_new),
        ("Updated clips", report.clips_updated),
        ("Duration", format_duration(report.duration_s)),
    ]
    return {
        "text": f"clipcrawler {named} {outcome}: {summary}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*clipcrawler {named} {outcome}*"}},
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in fields],
            },
        ],
    }


async def announce_run_finished(
    run_id: int,
    *,
    db: MeteredDatabase,
    http: httpx.AsyncClient | None,
    settings: Settings,
    events: EventLog,
    row: Row | None = None,
) -> bool:
    """Log that a run finished and post the webhook; never raises. True if the webhook accepted the post.

    Only the invocation whose write flipped the run to finished calls this (the RETURNING of
    `finish_run_if_complete`), so a run is announced once even under duplicate delivery.
    """
    report = RunReport(run_id)
    try:
        # The write that finished the run RETURNs its row; reading it again would cost a subrequest.
        row = row if row is not None else await db.first("SELECT * FROM runs WHERE id = ?", run_id)
        if row is not None:
            report = RunReport.from_row(row)
    except Exception as exc:  # the run is finished whatever happens here; announce what is known
        events.emit("run_report_unavailable", level=logging.WARNING, run_id=run_id, error=_describe(exc))
    events.emit(
        "run_finished",
        run_id=run_id,
        kind=report.kind or None,
        streamers=report.streamers,
        jobs_done=report.jobs_done,
        jobs_failed=report.jobs_failed,
        clips_new=report.clips_new,
        clips_updated=report.clips_updated,
        duration_s=report.duration_s,
    )
    if not settings.webhook_url:
        return False
    if http is None:
        events.emit("notification_skipped", level=logging.WARNING, run_id=run_id, reason="no HTTP client")
        return False
    payload = slack_payload(report, run_link(settings.public_url, run_id))
    return await post_webhook(http, settings, db.budget, payload, events, run_id=run_id)


async def post_webhook(
    http: httpx.AsyncClient,
    settings: Settings,
    budget: Budget,
    payload: dict[str, Any],
    events: EventLog,
    *,
    run_id: int,
) -> bool:
    """One POST to the webhook, charged as one external subrequest; failures are logged, not raised."""
    guard("httpx", settings.webhook_url)  # httpx logs each request's URL, and this one is a secret
    try:
        charge_fetch(budget)
        response = await http.post(settings.webhook_url, json=payload, timeout=settings.http_timeout_seconds)
    except Exception as exc:
        events.emit("notification_failed", level=logging.WARNING, run_id=run_id, error=_describe(exc))
        return False
    if response.status_code >= 300:
        events.emit("notification_failed", level=logging.WARNING, run_id=run_id, status=response.status_code)
        return False
    events.emit("notification_sent", run_id=run_id, status=response.status_code)
    return True


def charge_fetch(budget: Budget) -> None:
    """Charge one external fetch that is not a Helix call (Budget.charge only knows helix/d1/queue)."""
    if not budget.can_afford(external=1):
        raise BudgetExhausted(EXTERNAL, budget.external_limit)
    budget.used[EXTERNAL] += 1


def _describe(exc: Exception) -> str:
    # httpx errors can quote the request URL, which for a webhook is itself the secret: the event
    # log masks known secrets, and the type alone says enough.
    return type(exc).__name__ if isinstance(exc, httpx.HTTPError) else f"{type(exc).__name__}: {exc}"
