"""HTML building blocks for the dashboard: every value escaped, no JavaScript, one inline stylesheet."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.responses import HTMLResponse

from shared.states import RunStatus
from shared.timefmt import parse_rfc3339

# Inline styles only; nothing else may load, run, frame the page, or receive a form.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

TWITCH_HOST = "twitch.tv"  # clips.twitch.tv, www.twitch.tv and the other subdomains

STYLE = """
:root { color-scheme: light dark; --fg: #1d2330; --muted: #667085; --line: #d9dee7; --bg: #fff;
        --card: #f7f8fb; --accent: #4455cc; --ok: #1a7f4b; --bad: #c0392b; --warn: #b7791f; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ef; --muted: #98a2b3; --line: #2e3442;
        --bg: #12151c; --card: #1a1f29; --accent: #8b9bff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       background: var(--bg); }
header { display: flex; align-items: center; gap: 1.5rem; padding: .7rem 1.5rem;
         border-bottom: 1px solid var(--line); }
header .brand { font-weight: 700; color: var(--fg); text-decoration: none; }
header nav a { margin-right: 1rem; color: var(--muted); text-decoration: none; }
header nav a:hover { color: var(--accent); }
header form { margin-left: auto; }
main { padding: 1rem 1.5rem 3rem; max-width: 1200px; }
h1 { font-size: 1.35rem; margin: .4rem 0 1rem; }
h2 { font-size: 1.05rem; margin: 1.8rem 0 .6rem; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: .85rem; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.muted { color: var(--muted); }
.error { color: var(--bad); white-space: pre-wrap; word-break: break-word; max-width: 32rem; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; margin: .5rem 0 1rem; padding: 0; }
.cards div { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .5rem .8rem;
             min-width: 7rem; }
.cards dt { color: var(--muted); font-size: .8rem; }
.cards dd { margin: 0; font-size: 1.25rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .8rem;
         border: 1px solid; }
.badge.finished, .badge.done { color: var(--ok); }
.badge.failed { color: var(--bad); }
.badge.finished-failed { color: var(--bad); border-style: dashed; }
.badge.running, .badge.queued, .badge.enqueuing { color: var(--warn); }
.actions { display: flex; gap: .6rem; align-items: center; margin: .5rem 0; }
button { font: inherit; padding: .35rem .9rem; border-radius: 6px; border: 1px solid var(--accent);
         background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: transparent; color: var(--accent); }
.notice { padding: .55rem .9rem; border-radius: 6px; background: var(--card);
          border-left: 4px solid var(--ok); }
.notice.bad { border-left-color: var(--bad); }
.filters a { margin-right: .8rem; }
.filters a.current { font-weight: 700; text-decoration: none; color: var(--fg); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(26rem, 1fr)); gap: 0 2rem; }
svg text { fill: var(--muted); font-size: 11px; }
.idle { color: var(--muted); font-size: .85rem; }
input[type=password] { font: inherit; padding: .35rem .5rem; width: 22rem; max-width: 100%; }
"""


def esc(value: Any) -> str:
    """Any value as text safe inside HTML, attributes included."""
    return escape("" if value is None else str(value), quote=True)


def url(path: str, **params: Any) -> str:
    """A local link with its query string; None-valued parameters are left out."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{path}?{query}" if query else path


def link(href: str, text: Any, *, external: bool = False) -> str:
    rel = ' rel="noopener noreferrer" target="_blank"' if external else ""
    return f'<a href="{esc(href)}"{rel}>{esc(text)}</a>'


def twitch_link(href: Any, text: Any) -> str:
    """A link only to an https page on Twitch; anything else (javascript:, data:, elsewhere) is plain text."""
    return link(href, text, external=True) if is_twitch_url(href) else esc(text)


def is_twitch_url(href: Any) -> bool:
    if not isinstance(href, str) or len(href) > 2048 or any(c.isspace() or not c.isprintable() for c in href):
        return False
    try:
        parts = urlsplit(href)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    return (
        parts.scheme == "https"
        and port is None
        and "@" not in parts.netloc
        and (host == TWITCH_HOST or host.endswith("." + TWITCH_HOST))
    )


def badge(status: str) -> str:
    return f'<span class="badge {esc(status)}">{esc(status)}</span>'


def run_badge(run: Any) -> str:
    """A run's status; one that finished with failed jobs is not shown as the clean 'finished'."""
    failed, total = int(run["jobs_failed"] or 0), int(run["jobs_total"] or 0)
    if run["status"] != RunStatus.FINISHED or not failed:
        return badge(run["status"])
    share = f"{failed / total:.0%}" if total else "some"
    return (
        f'<span class="badge finished-failed" title="{esc(failed)} of {esc(total)} jobs failed">'
        f"finished, {esc(share)} failed</span>"
    )


def number(value: Any) -> str:
    return f"{int(value):,}" if value is not None else "–"


def plural(count: Any, noun: str) -> str:
    """'1 failed job', '3 failed jobs'."""
    n = int(count)
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def stamp(value: str | None, now: float) -> str:
    """A stored timestamp as '3 min ago', with the exact time on hover."""
    if not value:
        return '<span class="muted">never</span>'
    return f'<time datetime="{esc(value)}" title="{esc(value)}">{esc(ago(parse_rfc3339(value), now))}</time>'


def ago(when: float, now: float) -> str:
    seconds = int(now - when)
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    whole = round(seconds)
    if whole >= 3600:
        return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
    if whole >= 60:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"


def cards(items: Iterable[tuple[str, str, Any]]) -> str:
    """Big counters: (key, label, value); `data-counter` lets tests and scripts read them back."""
    cells = "".join(
        f'<div><dt>{esc(label)}</dt><dd data-counter="{esc(key)}">{esc(value)}</dd></div>'
        for key, label, value in items
    )
    return f'<dl class="cards">{cells}</dl>'


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: Sequence[int] = (),
    empty: str = "Nothing yet.",
    attrs: str = "",
) -> str:
    """A table of already-escaped cells; `numeric` column indexes are right-aligned."""

    def css(i: int) -> str:
        return " class=num" if i in numeric else ""

    head = "".join(f"<th{css(i)}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{css(i)}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>" for row in rows
    )
    if not body:
        return f'<p class="muted">{esc(empty)}</p>'
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def post_button(action: str, label: str, csrf: str, *, name: str = "", secondary: bool = False) -> str:
    """A form with one button: works without JavaScript, carries the session's CSRF token."""
    css = ' class="secondary"' if secondary else ""
    named = f' name="{esc(name)}"' if name else ""
    return (
        f'<form method="post" action="{esc(action)}">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
        f'<button type="submit"{css}{named}>{esc(label)}</button></form>'
    )


def page(
    title: str,
    body: str,
    *,
    csrf: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The layout around `body` (already HTML); with `csrf`, the navigation and a logout button."""
    nav = ""
    if csrf is not None:
        nav = (
            '<nav><a href="/">Overview</a><a href="/ui/runs">Runs</a><a href="/ui/streamers">Streamers</a>'
            '<a href="/ui/clips">Clips</a>'
            '<a href="/openapi.json">API</a></nav>'
            + post_button("/ui/logout", "Log out", csrf, secondary=True)
        )
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{esc(title)} · clipcrawler</title><link rel="icon" href="data:,"><style>{STYLE}</style>'
        "</head><body>"
        f'<header><a class="brand" href="/">clipcrawler</a>{nav}</header>'
        f"<main>{body}</main></body></html>"
    )
    return HTMLResponse(
        document, status_code=status, headers={"Content-Security-Policy": CSP, **(headers or {})}
    )


# A job's columns after the ones that say which job it is (on the run page the streamer, on a
# streamer's page the run).
JOB_HEADERS = [
    "status",
    "attempts",
    "pages",
    "new",
    "updated",
    "subrequests",
    "stop reason",
    "error",
    "finished",
]
JOB_NUMERIC = [3, 4, 5, 6, 7]  # with two naming columns before them


def job_cells(j: dict[str, Any], now: float) -> list[str]:
    """A job's status, counters, stop reason, error and finish time, as table cells."""
    return [
        badge(j["status"]),
        number(j["attempts"]),
        number(j["pages"]),
        number(j["clips_new"]),
        number(j["clips_updated"]),
        number(j["subrequests"]),
        esc(j["stop_reason"] or ""),
        f'<span class="error">{esc(j["error"] or "")}</span>',
        stamp(j["finished_at"], now) if j["finished_at"] else "",
    ]
