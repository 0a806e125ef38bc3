from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.cli import main
from tests.test_export_support import visible_files, wrangler_dump


def run_cli(
    capsys: pytest.CaptureFixture[str], *argv: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    code = main(list(argv), env or {})
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def crawled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    db = str(tmp_path / "crawl.sqlite")
    assert run_cli(capsys, "--db", db, "demo", "--streamers", "4", "--json")[0] == 0
    return db


def test_export_then_export_again(crawled: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "parquet"
    code, text, _ = run_cli(capsys, "--db", crawled, "export", "--out", str(out))
    assert code == 0 and f"to {out.as_uri()}" in text
    assert "clips  full" in text and "runs   full" in text and "jobs   full" in text
    assert any(f.startswith("clips/created_date=") for f in visible_files(out))

    code, text, _ = run_cli(capsys, "--db", crawled, "export", "--out", str(out), "--json")
    report = json.loads(text)
    assert code == 0 and report["rows"] == 0 and {t["mode"] for t in report["tables"]} == {"incremental"}


def test_default_destination_is_export_in_the_working_directory(
    crawled: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "export", env={"CLIPCRAWLER_DB": crawled})[0] == 0
    assert visible_files(tmp_path / "export")
    env = {"CLIPCRAWLER_DB": crawled, "CLIPCRAWLER_EXPORT_OUT": "elsewhere"}
    assert run_cli(capsys, "export", env=env)[0] == 0
    assert visible_files(tmp_path / "elsewhere")


def test_export_a_wrangler_dump(crawled: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = wrangler_dump(Path(crawled), tmp_path / "d1.sql")
    state = str(tmp_path / "state.sqlite")
    code, text, _ = run_cli(
        capsys,
        "--db",
        state,
        "export",
        "--source",
        "d1-sql",
        str(dump),
        "--out",
        str(tmp_path / "d1"),
        "--full",
    )
    assert code == 0 and "from d1 to" in text


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--source", "d1-sql"], {}, "--source d1-sql takes the dump file"),
        (["x.sql"], {}, "'x.sql' is only read with --source d1-sql"),
        (["--out", "r2://bucket/clips"], {}, "r2:// needs CLOUDFLARE_ACCOUNT_ID"),
        (
            ["--source", "d1-api"],
            {"CLOUDFLARE_API_TOKEN": "tok-123"},
            "--source d1-api needs CLOUDFLARE_ACCOUNT_ID and CLIPCRAWLER_D1_DATABASE_ID",
        ),
        (["--overlap-seconds", "-1"], {}, "overlap must not be negative"),
    ],
)
def test_export_usage_errors(
    argv: list[str], env: dict[str, str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = [] if "--out" in argv else ["--out", str(tmp_path / "o")]
    code, _, err = run_cli(capsys, "--db", str(tmp_path / "x.sqlite"), "export", *argv, *out, env=env)
    assert code == 2 and message in err and "Traceback" not in err and "tok-123" not in err


def test_export_of_a_missing_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "none.sqlite")
    code, _, err = run_cli(capsys, "--db", db, "export", "--out", str(tmp_path / "o"))
    assert code == 2 and "no database at" in err and not (tmp_path / "none.sqlite").exists()
