"""A small inline SVG chart of clips (new, updated) and failed jobs per run, oldest run on the left.

Heights are on a square-root scale, and any non-zero count gets at least MIN_BAR pixels: a first crawl's
backfill or one large manual run would otherwise flatten every hourly run next to it to nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from producer.dashboard.html import esc
from shared.ports import Row

WIDTH = 760
CLIPS_HEIGHT = 130
FAILS_HEIGHT = 36
LEFT = 44
TOP = 18
GAP = 14  # between the clips panel and the failures strip
BOTTOM = 20
NEW, UPDATED, FAILED = "#4455cc", "#9aa7f0", "#c0392b"
MIN_BAR = 2.0  # pixels: a run with any clips or failures never disappears


def scaled(value: float, most: float, height: float) -> float:
    """The bar height of `value` on a square-root scale topping out at `most`; at least MIN_BAR if
    non-zero.
    """
    if value <= 0 or most <= 0:
        return 0.0
    return max(MIN_BAR, height * math.sqrt(min(value, most) / most))


def runs_chart(runs: Sequence[Row]) -> str:
    """Stacked bars of new + updated clips, and below them failed jobs, one column per run."""
    if not runs:
        return '<p class="muted">No runs yet: kick one.</p>'
    ordered = sorted(runs, key=lambda r: int(r["id"]))
    most_clips = max(1, max(int(r["clips_new"]) + int(r["clips_updated"]) for r in ordered))
    most_failed = max(1, max(int(r["jobs_failed"]) for r in ordered))
    plot = WIDTH - LEFT - 8
    step = plot / len(ordered)
    bar = max(2.0, min(28.0, step * 0.7))
    fails_top = TOP + CLIPS_HEIGHT + GAP
    height = fails_top + FAILS_HEIGHT + BOTTOM
    quarter = most_clips / 4  # drawn halfway up, which is what a square-root scale does to a quarter
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
            f'role="img" aria-label="clips and failed jobs per run, last {len(ordered)} runs, square-root '
            'scale">'
        ),
        _legend(),
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{most_clips:,}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + CLIPS_HEIGHT / 2 + 4:.1f}" text-anchor="end">{quarter:,.0f}</text>',
        (
            f'<line x1="{LEFT}" y1="{TOP + CLIPS_HEIGHT / 2:.1f}" x2="{WIDTH - 8}" '
            f'y2="{TOP + CLIPS_HEIGHT / 2:.1f}" '
            'stroke="#8883" stroke-dasharray="3 3"/>'
        ),
        f'<text x="{LEFT - 6}" y="{TOP + CLIPS_HEIGHT}" text-anchor="end">0</text>',
        f'<text x="{WIDTH - 8}" y="{TOP + 4}" text-anchor="end" data-scale="sqrt">square-root scale</text>',
        f'<text x="{LEFT - 6}" y="{fails_top + 10}" text-anchor="end">{most_failed:,}</text>',
        _axis(TOP + CLIPS_HEIGHT),
        _axis(fails_top + FAILS_HEIGHT),
    ]
    label_every = max(1, len(ordered) // 10)
    for i, run in enumerate(ordered):
        x = LEFT + i * step + (step - bar) / 2
        new, updated, failed = int(run["clips_new"]), int(run["clips_updated"]), int(run["jobs_failed"])
        h_clips = scaled(new + updated, most_clips, CLIPS_HEIGHT)
        # The stack's height is the total's; new and updated share it in proportion, each visible if non-zero.
        share = h_clips * new / (new + updated) if new + updated else 0.0
        low, high = (MIN_BAR / 2 if new else 0.0), h_clips - (MIN_BAR / 2 if updated else 0.0)
        h_new = min(max(share, low), high) if new else 0.0
        h_updated = h_clips - h_new
        h_failed = scaled(failed, most_failed, FAILS_HEIGHT)
        tip = f"run {run['id']} ({run['created_at']}): {new:,} new, {updated:,} updated, {failed:,} failed"
        parts.append(
            f'<g data-run="{esc(run["id"])}"><title>{esc(tip)}</title>'
            f'<rect x="{x:.1f}" y="{TOP + CLIPS_HEIGHT - h_new:.1f}" width="{bar:.1f}" '
            f'height="{h_new:.1f}" fill="{NEW}"/>'
            f'<rect x="{x:.1f}" y="{TOP + CLIPS_HEIGHT - h_new - h_updated:.1f}" width="{bar:.1f}" '
            f'height="{h_updated:.1f}" fill="{UPDATED}"/>'
            f'<rect x="{x:.1f}" y="{fails_top + FAILS_HEIGHT - h_failed:.1f}" width="{bar:.1f}" '
            f'height="{h_failed:.1f}" fill="{FAILED}"/></g>'
        )
        if i % label_every == 0 or i == len(ordered) - 1:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 5}" text-anchor="middle">{esc(run["id"])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _axis(y: float) -> str:
    return f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - 8}" y2="{y}" stroke="#8885"/>'


def _legend() -> str:
    items = [(NEW, "new clips"), (UPDATED, "updated clips"), (FAILED, "failed jobs (lower strip)")]
    out = []
    x = LEFT
    for colour, label in items:
        out.append(
            f'<rect x="{x}" y="2" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="11">{esc(label)}</text>'
        )
        x += 24 + 7 * len(label)
    return "".join(out)
