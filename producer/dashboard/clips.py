"""The clip browser (GET /ui/clips): the filters of GET /clips as a form, thumbnails, paging by key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from producer.api.clips import PARAMS, read_clip_query
from producer.api.errors import ApiError
from producer.api.validation import query
from producer.clip_search import DELETED, clips_page, encode_key
from producer.dashboard.html import CSP, esc, link, number, page, stamp, table, url
from producer.dashboard.twitch_links import IMAGE_CSP_SOURCES, twitch_url
from shared.ports import Row

if TYPE_CHECKING:
    from producer.dashboard.session import Viewer

BROWSER_PAGE = 50
DELETED_LABELS = {"exclude": "hide", "include": "show", "only": "only deleted"}
# The pages with thumbnails let the browser load images from Twitch's CDN, and from nowhere else.
CLIPS_CSP = CSP.replace("img-src 'self' data:", f"img-src 'self' data: {IMAGE_CSP_SOURCES}")
HEADERS = {"Content-Security-Policy": CLIPS_CSP}
GAIN_ESTIMATE = (
    "Estimated: the view count 24 h ago is interpolated between the clip's creation (0 views), "
    "the daily view-count marks kept for young clips and its latest count; the gain is the "
    "difference from now. Only clips still re-crawled are ranked."
)

STYLE = """
img.thumb { width: 128px; height: 72px; object-fit: cover; border-radius: 4px; background: var(--card);
            display: block; }
form.filters { display: flex; flex-wrap: wrap; gap: .6rem 1rem; align-items: end; margin: .5rem 0 1rem; }
form.filters label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted);
                     gap: .15rem; }
form.filters input, form.filters select { font: inherit; padding: .25rem .4rem; min-width: 9rem; }
.badge.deleted { color: var(--bad); }
.badge.featured { color: var(--ok); }
"""


async def browser(request: Request, viewer: Viewer) -> Response:
    """GET /ui/clips?streamer=&game=&created_from=&created_to=&featured=&deleted=&sort=&after="""
    raw = query(request, PARAMS)
    params = {k: v for k, v in raw.items() if v.strip()}  # a form sends its empty fields too
    params.setdefault("limit", str(BROWSER_PAGE))
    context = viewer.context
    now = context.ports.clock.now()
    try:
        wanted = await read_clip_query(context.ports.db, params)
    except ApiError as exc:
        if exc.status != 422:
            raise
        notice = f'<p class="notice bad" data-notice="invalid">{esc(exc.message)}</p>'
        return page(
            "Clips",
            f"<style>{STYLE}</style><h1>Clips</h1>{filter_form(params)}{notice}",
            csrf=viewer.csrf,
            status=422,
            headers=HEADERS,
        )
    rows, next_key = await clips_page(context.ports.db, wanted.where, limit=wanted.limit, after=wanted.after)
    kept = {k: v for k, v in params.items() if k not in ("after", "limit")}
    more = []
    if "after" in params:
        more.append(link(url("/ui/clips", **kept), "← First page"))
    if next_key is not None:
        more.append(link(url("/ui/clips", **kept, after=encode_key(next_key)), "Next page →"))
    body = (
        f"<style>{STYLE}</style><h1>Clips</h1>{filter_form(params)}"
        + _summary(wanted.streamer, wanted.game, wanted.where.game_id)
        + clips_table(rows, now, name="clips")
        + (f'<p class="filters">{" ".join(more)}</p>' if more else "")
    )
    return page("Clips", body, csrf=viewer.csrf, headers=HEADERS)


def filter_form(params: Mapping[str, str]) -> str:
    """The filters as a GET form: works without JavaScript; the values shown are the ones asked for."""

    def field(name: str, label: str, kind: str = "text", placeholder: str = "") -> str:
        return (
            f'<label>{esc(label)}<input type="{kind}" name="{name}" value="{esc(params.get(name, ""))}" '
            f'placeholder="{esc(placeholder)}"></label>'
        )

    def select(name: str, label: str, options: list[tuple[str, str]]) -> str:
        chosen = params.get(name, "")
        items = "".join(
            f'<option value="{esc(value)}"{" selected" if value == chosen else ""}>{esc(text)}</option>'
            for value, text in options
        )
        return f'<label>{esc(label)}<select name="{name}">{items}</select></label>'

    return (
        '<form class="filters" method="get" action="/ui/clips">'
        + field("streamer", "streamer", placeholder="login or id")
        + field("game", "game", placeholder="id or name")
        + field("created_from", "created from", "date")
        + field("created_to", "created to", "date")
        + select("featured", "featured", [("", "any"), ("true", "featured"), ("false", "not featured")])
        + select("deleted", "deleted on Twitch", [(d, DELETED_LABELS[d]) for d in DELETED])
        + select("sort", "order", [("newest", "newest"), ("views", "most viewed")])
        + '<button type="submit">Filter</button></form>'
    )


def _summary(streamer: Row | None, game: Row | None, game_id: str | None) -> str:
    parts = []
    if streamer is not None:
        parts.append(
            "streamer "
            + link(f"/ui/streamers/{streamer['id']}", streamer["display_name"] or streamer["login"])
        )
    if game_id is not None:
        parts.append("game " + (esc(game["name"]) if game else f'<span class="muted">{esc(game_id)}</span>'))
    return f'<p class="muted">Clips of {", ".join(parts)}.</p>' if parts else ""


def thumbnail(row: Row) -> str:
    """The clip's thumbnail, linked to the clip, when both are on Twitch's hosts; else nothing."""
    src = twitch_url(row.get("thumbnail_url"), image=True)
    if src is None:
        return ""
    image = f'<img class="thumb" src="{esc(src)}" alt="" loading="lazy" width="128" height="72">'
    href = twitch_url(row.get("url"))
    return f'<a href="{esc(href)}" rel="noopener noreferrer" target="_blank">{image}</a>' if href else image


def title(row: Row) -> str:
    """The title, linked to the clip on Twitch when its URL is a Twitch one."""
    text = row.get("title") or row["id"]
    href = twitch_url(row.get("url"))
    return link(href, text, external=True) if href else esc(text)


def game_cell(row: Row) -> str:
    """The game's name where known, else its id (muted), else nothing: never an error."""
    if row.get("game_name"):
        return esc(row["game_name"])
    return f'<span class="muted">{esc(row["game_id"])}</span>' if row.get("game_id") else ""


def state(row: Row, now: float) -> str:
    out = []
    if row.get("is_featured"):
        out.append('<span class="badge featured">featured</span>')
    if row.get("deleted_at"):
        out.append(f'<span class="badge deleted">deleted</span> {stamp(row["deleted_at"], now)}')
    return " ".join(out)


def clips_table(rows: list[Row], now: float, *, name: str, streamer_column: bool = True) -> str:
    cells = []
    for r in rows:
        cell = [thumbnail(r), title(r)]
        if streamer_column:
            shown = r["broadcaster_name"] or r["broadcaster_id"]
            cell.append(link(f"/ui/streamers/{r['broadcaster_id']}", shown))
        cell += [game_cell(r), number(r["view_count"]), stamp(r["created_at"], now), state(r, now)]
        cells.append(cell)
    headers = ["", "clip"] + (["streamer"] if streamer_column else []) + ["game", "views", "created", ""]
    views = 4 if streamer_column else 3
    return table(headers, cells, numeric=[views], empty="No clips match.", attrs=f' data-table="{name}"')
