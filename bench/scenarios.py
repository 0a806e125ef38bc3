"""The benchmark's knobs and its three scenarios."""

from __future__ import annotations

from dataclasses import dataclass

# A fixed instant, so every run crawls the same emulated clips (the emulator's world is a function of time).
ORIGIN = 1_790_000_000.0
NAMES = ("S1", "S2", "S3", "S4")


@dataclass(frozen=True)
class BenchConfig:
    """Latencies, limits and sizes; the defaults are the issue's."""

    helix_latency_ms: float = 80.0
    helix_jitter_ms: float = 20.0
    d1_latency_ms: float = 15.0
    d1_jitter_ms: float = 5.0
    concurrency: int = 50
    rate_limit: int = 800  # Helix points per minute
    seed: int = 1
    clips_per_day: tuple[int, int] = (10, 30)
    lookback_hours: int = 24
    s1_streamers: int = 200
    s2_streamers: int = 10_000
    # The simulation's CPU weighs clock-factor times more in scenario time. At 5x some runs drew 1 or 20 429s
    # of 10,000 calls and others none; the likely cause is a pause of the shared loop (a fan-out invocation
    # enqueues 1,000 jobs) growing into seconds of scenario time, enough to push a clump of calls past a
    # window's edge. 3x drew none in its first full run. 10x saturated 2 CPUs.
    s2_clock_factor: float = 3.0
    s2_baseline_sample: int = 100
    s3_clips: int = 5_000
    # S4, Twitch's traps: every one at once on a run of light streamers.
    s4_streamers: int = 1_000
    s4_heavy_clips: int = 2_500  # its first streamer's clips in the window: past the ~1,000 cap
    s4_looping: int = 4  # streamers whose last page's cursor leads back to that page
    s4_empty_page: int = 4  # streamers whose last page leads on to an empty page with a cursor
    s4_first_attempt_errors: float = 0.01  # share of Helix requests whose first attempt answers 503
    s4_revocations: int = 1  # times every token is revoked mid-run
    s4_clock_factor: float = 3.0
    origin: float = ORIGIN
    # Twitch and D1 each in a process of their own (bench/helix_process.py, bench/sqlite.py), as in production
    # their work runs on other machines; off, both share the crawler's process (quicker to start).
    services_in_processes: bool = True
    # PROTOTYPE, off by default: delay the fan-out's crawl messages to this share of the rate limit.
    spread_fanout: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "concurrency",
            "rate_limit",
            "s1_streamers",
            "s2_streamers",
            "s2_baseline_sample",
            "s3_clips",
            "s4_streamers",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} has value {getattr(self, name)!r}; it must be at least 1")
        if self.s2_clock_factor <= 0:
            raise ValueError(f"s2_clock_factor has value {self.s2_clock_factor!r}; it must be positive")
        if not 0 <= self.spread_fanout <= 1:
            raise ValueError(f"spread_fanout has value {self.spread_fanout!r}; it must be between 0 and 1")


@dataclass(frozen=True)
class Scenario:
    """One workload, run once with the design and once with the naive baseline."""

    name: str
    title: str
    streamers: int
    concurrency: int
    clock_factor: float = 1.0  # virtual seconds per real second, for latencies and the rate limit alike
    plan: str = "free"
    heavy_clips: int | None = None  # clips in the first streamer's window, for S3
    baseline_sample: int | None = None  # the baseline crawls only the first N; its figures are scaled up
    # The naive loop never nears the rate limit, so a fast clock would only make its CPU weigh more: it runs
    # in real time unless told otherwise.
    baseline_clock_factor: float = 1.0
    design_runs: int = 1  # the design side's runs; the one with the median wall time is reported
    crawls: int = 1  # design crawls one after the other (S3's second starts from the span the first found)
    traps: bool = False  # S4: the emulated Twitch plays every trap (bench/run.py, `trap_faults`)

    @property
    def baseline_streamers(self) -> int:
        return min(self.streamers, self.baseline_sample or self.streamers)


def scenarios(config: BenchConfig, names: tuple[str, ...] = NAMES) -> list[Scenario]:
    """The scenarios named, in order."""
    sample = config.s2_baseline_sample
    known = {
        # S1's design takes about a second, so it is run three times against one 76-second baseline.
        "S1": Scenario(
            "S1",
            f"the seed's scale: {config.s1_streamers:,} streamers, "
            f"{config.clips_per_day[0]}-{config.clips_per_day[1]} clips each",
            config.s1_streamers,
            config.concurrency,
            design_runs=5,
        ),
        "S2": Scenario(
            "S2",
            f"scale: {config.s2_streamers:,} streamers under {config.rate_limit} Helix points a minute",
            config.s2_streamers,
            config.concurrency,
            clock_factor=config.s2_clock_factor,
            baseline_sample=sample if sample < config.s2_streamers else None,
        ),
        "S3": Scenario(
            "S3",
            f"a heavy streamer: ~{config.s3_clips:,} clips in the window, Free plan",
            1,
            config.concurrency,
            plan="free",
            heavy_clips=config.s3_clips,
            crawls=2,
        ),
        "S4": Scenario(
            "S4",
            f"traps: {config.s4_streamers:,} streamers, {config.s4_looping} with looping "
            "cursors, "
            f"{config.s4_empty_page} with empty pages that carry a cursor, one with "
            f"~{config.s4_heavy_clips:,} clips past the cap, {config.s4_revocations} token "
            f"revocation(s), {config.s4_first_attempt_errors:.0%} of first attempts 503",
            config.s4_streamers,
            config.concurrency,
            clock_factor=config.s4_clock_factor,
            heavy_clips=config.s4_heavy_clips,
            traps=True,
            baseline_sample=min(config.s4_streamers, config.s2_baseline_sample),
        ),
    }
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"unknown scenario(s) {', '.join(map(repr, unknown))}; expected some of {', '.join(NAMES)}"
        )
    return [known[n] for n in names]
