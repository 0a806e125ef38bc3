"""The README's `clipcrawler sql` examples run, through the installed CLI, on a crawled database."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import sqlite3
import subprocess
from pathlib import Path

from tests.test_browser import crawl_with_a_failure
from tests.test_browser_clips import prepare

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / ".venv" / "bin" / "clipcrawler"


def examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [shlex.split(line)[2] for line in re.findall(r"^clipcrawler sql .+$", text, re.MULTILINE)]


def test_every_readme_sql_example_runs_and_the_new_ones_show_deletions_and_game_names(tmp_path: Path) -> None:
    path = tmp_path / "crawl.sqlite"
    asyncio.run(crawl_with_a_failure(path))
    facts = prepare(path)  # two games named, the most viewed clip marked deleted
    with sqlite3.connect(path) as conn:
        named = {name for (name,) in conn.execute("SELECT name FROM games")}
    queries = examples()
    assert (
        len(queries) >= 6 and any("deleted_at" in q for q in queries) and any("games" in q for q in queries)
    )
    for sql in queries:
        done = subprocess.run(
            [str(CLI if CLI.exists() else "clipcrawler"), "--db", str(path), "sql", sql, "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (sql, done.stderr)
        rows = json.loads(done.stdout)
        if "deleted_at IS NOT NULL" in sql:
            assert [r["id"] for r in rows] == [facts["deleted"]]
        if "coalesce(g.name" in sql:
            assert rows and {r["game"] for r in rows} & named
        if "GROUP BY g.name" in sql:
            assert {r["name"] for r in rows} == named
