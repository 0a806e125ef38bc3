"""The splits a history walk is still inside of: each split window's sample sizes the windows re-reading it.

The trail and the density measured so far are the walk's state: written with each page of a backfill, so a
continuation (a new invocation, on the Free plan every ~45 pages) goes on as the last one would have.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shared.split_sample import SplitSample
from shared.windows import Window, on_grid


@dataclass
class SplitTrail:
    """Split windows the walk has not passed yet, outermost first, each with what its walk read.

    A split inside a split (a busy day found while re-reading a busy month) narrows the walk only until the
    inner window is passed; the outer window's sample then sizes the windows again, and once every split
    window is passed the walk may widen to the widest window.
    """

    samples: list[SplitSample] = field(default_factory=list)

    def split(self, sample: SplitSample) -> None:
        self.samples.append(sample)

    def completed(self, window: Window, clips: int) -> SplitSample | None:
        """A complete window of the re-read: every sample learns its share from it; passed splits drop.

        Once the last is passed, the outermost split's sample: the busy stretch is behind, and the density
        before that split, if it was split on one, sizes the next windows better than those read inside it.
        """
        outer = self.samples[0] if self.samples else None
        for sample in self.samples:
            sample.observe(window, clips)
        self.samples = [s for s in self.samples if s.window.end > window.end]
        return outer if not self.samples else None

    def span(self, start: float, target: int) -> float | None:
        """The span from `start` the innermost sample says holds `target` clips, if one can say."""
        for sample in reversed(self.samples):
            span = sample.span(start, target)
            if span is not None:
                return span
        return None

    def ceiling(self, widest: float) -> float:
        """How wide a window may be: under half the innermost split window, while inside one."""
        return min(widest, on_grid(self.samples[-1].window.span / 2)) if self.samples else widest

    def __bool__(self) -> bool:
        return bool(self.samples)


@dataclass
class WalkState:
    """What a history walk carries across invocations: its split trail, and the clips and span measured in
    its latest windows."""

    trail: SplitTrail
    measured: tuple[int, float] = (0, 0.0)
    created: list[float] = field(default_factory=list)  # the window in flight: its clips read so far

    def to_json(self) -> str:
        return json.dumps(
            {
                "measured": list(self.measured),
                "splits": [_sample_to_dict(s) for s in self.trail.samples],
                "created": [round(t) for t in self.created],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> WalkState:
        """The state a job row holds; a fresh one for none, or for a value this code cannot read."""
        try:
            data = json.loads(text) if text else {}
            clips, span = data.get("measured", (0, 0.0))
            return cls(
                SplitTrail([_sample_from_dict(s) for s in data.get("splits", [])]),
                (int(clips), float(span)),
                [float(t) for t in data.get("created", [])],
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return cls(SplitTrail())  # the walk sizes its windows afresh: slower, never wrong


def _sample_to_dict(sample: SplitSample) -> dict[str, Any]:
    start = sample.window.start
    return {
        "window": [sample.window.start, sample.window.end],
        "offsets": [round(t - start) for t in sample.times],  # whole seconds: the grid is 600
        "prior": sample.prior,
        "density": sample.density,
        "sampled": sample.sampled,
        "found": sample.found,
    }


def _sample_from_dict(data: dict[str, Any]) -> SplitSample:
    start, end = (float(v) for v in data["window"])
    prior, density = data.get("prior"), data.get("density")
    return SplitSample(
        Window(start, end),
        [start + float(t) for t in data["offsets"]],
        float(prior) if prior is not None else None,
        float(density) if density is not None else None,
        int(data.get("sampled", 0)),
        int(data.get("found", 0)),
    )
