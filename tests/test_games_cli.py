"""Game names (issue 15 item 2), through the installed CLI: one demo names the game of every clip it
stored."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_support import run

UNNAMED = (
    "SELECT count(*) AS n FROM clips LEFT JOIN games ON games.id = clips.game_id WHERE games.name IS NULL"
)


def test_one_demo_names_the_game_of_every_clip(tmp_path: Path) -> None:
    # As `make demo` runs it: the default 200 streamers.
    demo = run(["--db", "demo.sqlite", "demo", "--json"], cwd=tmp_path, timeout=300)
    assert demo.code == 0, demo.err
    assert json.loads(demo.out)["status"] == "finished"
    unnamed = run(["--db", "demo.sqlite", "sql", UNNAMED, "--json"], cwd=tmp_path)
    assert unnamed.code == 0, unnamed.err
    assert json.loads(unnamed.out) == [{"n": 0}], unnamed.out
    clips = run(
        [
            "--db",
            "demo.sqlite",
            "sql",
            "SELECT count(*) AS n, count(DISTINCT game_id) AS games FROM clips",
            "--json",
        ],
        cwd=tmp_path,
    )
    counts = json.loads(clips.out)[0]
    assert counts["n"] > 100 and counts["games"] >= 3  # a demo stores clips of several games
    named = run(
        [
            "--db",
            "demo.sqlite",
            "sql",
            "SELECT id, name, box_art_url FROM games WHERE id = '509658'",
            "--json",
        ],
        cwd=tmp_path,
    )
    games = json.loads(named.out)
    assert games[0]["name"] == "Just Chatting" and "{width}x{height}" in games[0]["box_art_url"], games
