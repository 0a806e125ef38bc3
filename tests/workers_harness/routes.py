"""Every route of the producer's app, as calls both the Workers harness and local mode make, and compare.

Each call names a method, a path and who makes it: `bearer` (the API token), `none`, `wrong` (a wrong
token), `cookie` (the dashboard session of the last login), `old_cookie` (the session a logout ended).
Forms may carry "{csrf}", replaced by the CSRF token of the last page that had one. The calls run after
the story's tables are read, in this order: reads first, the calls that change state last.
"""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

from local.emulator import HelixWorld
from producer.api.streamers import encode_cursor

BIG = 2**53 - 1  # the first integer D1 cannot bind from Python
LARGEST = 2**53 - 2
THROTTLED_CLIENT = "203.0.113.9"  # the wrong-token flood comes from here, so the other calls stay unblocked
DEEP = "[" * 30_000 + "]" * 30_000


def call(name: str, method: str, path: str, auth: str = "bearer", **extra: Any) -> dict[str, Any]:
    return {"name": name, "method": method, "path": path, "auth": auth, **extra}


def calls(world: HelixWorld) -> list[dict[str, Any]]:
    streamers = sorted(world.all_streamers(), key=lambda s: (s.login, s.id))
    cursor = encode_cursor({"login": streamers[0].login, "id": streamers[0].id})
    gone = streamers[-1].id
    api = [
        call("health", "GET", "/health", "none"),
        call("openapi", "GET", "/openapi.json", "none"),
        call("runs", "GET", "/runs"),
        call("runs_head", "HEAD", "/runs"),
        call("runs_anonymous", "GET", "/runs", "none"),
        call("runs_wrong_token", "GET", "/runs", "wrong"),
        call("runs_limit_1", "GET", "/runs?limit=1"),
        call("runs_limit_100", "GET", "/runs?limit=100"),
        call("runs_limit_0", "GET", "/runs?limit=0"),
        call("runs_before_2", "GET", "/runs?before=2"),
        call("runs_before_largest", "GET", f"/runs?before={LARGEST}"),
        call("runs_before_big", "GET", f"/runs?before={BIG}"),
        call("runs_before_2_62", "GET", f"/runs?before={2**62}"),
        call("runs_unknown_param", "GET", "/runs?page=2"),
        call("runs_put", "PUT", "/runs"),
        call("kick_text_plain", "POST", "/runs", raw="{}", content_type="text/plain"),
        call("kick_deep", "POST", "/runs", raw=DEEP, content_type="application/json"),
        call("kick_vertical_tab", "POST", "/runs", raw="\u000b", content_type="application/json"),
        call("kick_unknown_field", "POST", "/runs", json={"everyone": True}),
        call("kick_unknown_streamer", "POST", "/runs", json={"streamers": ["999"]}),
        call("kick_anonymous", "POST", "/runs", "none", json={}),
        call("run_1", "GET", "/runs/1"),
        call("run_2", "GET", "/runs/2"),
        call("run_missing", "GET", "/runs/999"),
        call("run_largest", "GET", f"/runs/{LARGEST}"),
        call("run_big", "GET", f"/runs/{BIG}"),
        call("run_2_62", "GET", f"/runs/{2**62}"),
        call("run_not_a_number", "GET", "/runs/abc"),
        call("jobs_1", "GET", "/runs/1/jobs"),
        call("jobs_1_failed", "GET", "/runs/1/jobs?status=failed"),
        call("jobs_1_limit_5", "GET", "/runs/1/jobs?limit=5"),
        call("jobs_1_after_5", "GET", "/runs/1/jobs?after=5"),
        call("jobs_1_after_largest", "GET", f"/runs/1/jobs?after={LARGEST}"),
        call("jobs_1_after_big", "GET", f"/runs/1/jobs?after={BIG}"),
        call("jobs_big", "GET", f"/runs/{BIG}/jobs"),
        call("jobs_missing", "GET", "/runs/999/jobs"),
        call("retry_nothing_failed", "POST", "/runs/2/retry-failed"),
        call("retry_big", "POST", f"/runs/{BIG}/retry-failed"),
        call("retry_missing", "POST", "/runs/999/retry-failed"),
        call("streamers", "GET", "/streamers"),
        call("streamers_active", "GET", "/streamers?active=true&limit=3"),
        call("streamers_inactive", "GET", "/streamers?active=false"),
        call("streamers_after", "GET", f"/streamers?after={cursor}&limit=2"),
        call("streamers_after_garbage", "GET", "/streamers?after=!!"),
        call("streamers_limit_501", "GET", "/streamers?limit=501"),
        call("add_no_logins", "POST", "/streamers", json={}),
        call("add_bad_login", "POST", "/streamers", json={"logins": ["not a login!"]}),
        call("add_text_plain", "POST", "/streamers", raw='{"logins": ["x"]}', content_type="text/plain"),
        call("add_deep", "POST", "/streamers", raw=DEEP, content_type="application/json"),
        call("deactivate_missing", "DELETE", "/streamers/999"),
        call("clips", "GET", "/clips"),
        call("clips_anonymous", "GET", "/clips", "none"),
        call("clips_streamer_views", "GET", f"/clips?streamer={streamers[0].login}&sort=views&limit=5"),
        call(
            "clips_range_featured",
            "GET",
            "/clips?created_from=2020-01-01&created_to=9998-12-31&featured=false",
        ),
        call("clips_deleted_only", "GET", "/clips?deleted=only"),
        call("clips_game_unknown", "GET", "/clips?game=999999"),
        call("clips_limit_101", "GET", "/clips?limit=101"),
        call("clips_after_garbage", "GET", "/clips?after=!!"),
        call("clips_unknown_streamer", "GET", "/clips?streamer=nobody_here"),
        call("deactivate_anonymous", "DELETE", f"/streamers/{gone}", "none"),
    ]
    dashboard = [
        call("overview_anonymous", "GET", "/", "none"),
        call("runs_page_anonymous", "GET", "/ui/runs", "none"),
        call("login_form", "GET", "/ui/login?next=/ui/runs", "none"),
        call("login_wrong", "POST", "/ui/login", "none", form={"token": "not-the-token", "next": "/"}),
        call("login", "POST", "/ui/login", "none", form={"token": "{token}", "next": "/"}, save_cookie=True),
        call("overview", "GET", "/", "cookie"),
        call("overview_bearer", "GET", "/", "bearer"),
        call("ui_runs", "GET", "/ui/runs", "cookie"),
        call("ui_runs_before_2", "GET", "/ui/runs?before=2", "cookie"),
        call("ui_runs_before_big", "GET", f"/ui/runs?before={BIG}", "cookie"),
        call("ui_run_1", "GET", "/ui/runs/1", "cookie"),
        call("ui_run_1_failed", "GET", "/ui/runs/1?status=failed", "cookie"),
        call("ui_run_1_after_big", "GET", f"/ui/runs/1?after={BIG}", "cookie"),
        call("ui_run_big", "GET", f"/ui/runs/{BIG}", "cookie"),
        call("ui_run_missing", "GET", "/ui/runs/999", "cookie"),
        call("ui_streamers", "GET", "/ui/streamers", "cookie"),
        call("ui_streamers_after", "GET", f"/ui/streamers?after={cursor}", "cookie"),
        call("ui_streamers_garbage", "GET", "/ui/streamers?after=!!", "cookie"),
        call("ui_streamer", "GET", f"/ui/streamers/{streamers[0].id}", "cookie"),
        call("ui_streamer_missing", "GET", "/ui/streamers/999", "cookie"),
        call("ui_streamer_anonymous", "GET", f"/ui/streamers/{streamers[0].id}", "none"),
        call("ui_clips", "GET", "/ui/clips", "cookie"),
        call(
            "ui_clips_filtered",
            "GET",
            f"/ui/clips?streamer={streamers[0].login}&sort=views&deleted=include",
            "cookie",
        ),
        call("ui_clips_bad_limit", "GET", "/ui/clips?limit=0", "cookie"),
        call("ui_retry_nothing_failed", "POST", "/ui/runs/2/retry-failed", "cookie", form={"csrf": "{csrf}"}),
        call("ui_kick_no_csrf", "POST", "/ui/kick", "cookie", form={}),
        call("ui_kick_anonymous", "POST", "/ui/kick", "none", form={}),
        call("ui_unknown", "GET", "/ui/nothing-here", "cookie"),
    ]
    changes = [
        call("deactivate", "DELETE", f"/streamers/{gone}"),
        call("streamers_inactive_after", "GET", "/streamers?active=false"),
        call("ui_kick", "POST", "/ui/kick", "cookie", form={"csrf": "{csrf}"}),
        call("logout", "POST", "/ui/logout", "cookie", form={"csrf": "{csrf}"}, end_session=True),
        call("overview_after_logout", "GET", "/", "old_cookie"),
        call("ui_kick_after_logout", "POST", "/ui/kick", "old_cookie", form={"csrf": "{csrf}"}),
    ]
    flood = [
        call(f"wrong_token_{i:02d}", "GET", "/runs", "wrong", client=THROTTLED_CLIENT) for i in range(11)
    ]
    flood.append(call("right_token_while_blocked", "GET", "/runs", "bearer", client=THROTTLED_CLIENT))
    flood.append(
        call(
            "login_while_blocked",
            "POST",
            "/ui/login",
            "none",
            client=THROTTLED_CLIENT,
            form={"token": "{token}", "next": "/"},
        )
    )
    return api + dashboard + changes + flood


VOLATILE = frozenset(
    {
        "created_at",
        "enqueued_at",
        "finished_at",
        "started_at",
        "duration_s",
        "last_success_at",
        "last_failure_at",
        "added_at",
        "next_crawl_at",
        "first_seen_at",
        "last_seen_at",
    }
)


VOLATILE_COUNTERS = frozenset({"duration"})  # wall-clock time, like VOLATILE's columns


def comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """What must agree between the Workers and local mode: status, type, redirect, and the body's facts."""
    kind = (answer.get("content_type") or "").split(";")[0]
    out: dict[str, Any] = {
        "status": answer["status"],
        "content_type": kind,
        "location": answer.get("location"),
        "retry_after": bool(answer.get("retry_after")),
    }
    body = answer.get("body") or ""
    if kind == "application/json" and body:
        out["json"] = _drop_volatile(json.loads(body))
        if answer["status"] == 429:
            out["json"]["message"] = re.sub(r"\d+", "N", out["json"]["message"])
    elif kind == "text/html":
        out["h1"] = [unescape(re.sub(r"<[^>]+>", "", h)).strip() for h in re.findall(r"<h1>(.*?)</h1>", body)]
        out["counters"] = {
            k: v
            for k, v in re.findall(r'data-counter="([a-z_]+)">([^<]*)<', body)
            if k not in VOLATILE_COUNTERS
        }
        out["notices"] = [unescape(n) for n in re.findall(r'class="notice[^"]*"[^>]*>([^<]*)<', body)]
        if answer["status"] == 429:  # "try again in 60 s": seconds on each side's own clock
            out["notices"] = [re.sub(r"\d+", "N", n) for n in out["notices"]]
        out["tables"] = re.findall(r'data-table="([a-z-]+)"', body)
        out["rows"] = body.count("<tr>")
        out["links"] = sorted(set(re.findall(r'href="(/ui/[^"]*|https://[^"]*)"', body)))
    return out


def _drop_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_drop_volatile(v) for v in value]
    return value
