"""The API's OpenAPI 3.1 description, as data the Worker can serve (openapi.json is written from it).

Regenerate the committed file with `python -m producer.api.openapi > openapi.json`; a test checks both agree.
"""

from __future__ import annotations

import json
from typing import Any

from producer.api import clips as clips_api
from producer.api.runs import EARLIEST_BACKFILL, JOBS_PAGE_MAX, MAX_KICK_STREAMERS, PAGE_MAX
from producer.api.streamers import MAX_LOGINS
from producer.api.streamers import PAGE_MAX as STREAMERS_PAGE_MAX
from producer.api.validation import JSON_TYPE, MAX_BODY_BYTES, MAX_ID, MAX_JSON_DEPTH
from producer.clip_search import DELETED, MAX_SAFE_INTEGER, SORTS
from producer.queries import JOB_STATUSES
from producer.throttle import FAILURES_ALLOWED, WINDOW_SECONDS

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict[str, Schema], required: list[str] | None = None, **extra: Any) -> Schema:
    """A closed object: every listed property required unless `required` says otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
        **extra,
    }


INT = {"type": "integer", "minimum": 0}
TIME = {"type": "string", "format": "date-time"}
NULL_TIME = {"type": ["string", "null"], "format": "date-time"}
TEXT = {"type": "string"}
NULL_TEXT = {"type": ["string", "null"]}
COUNTS = _obj({k: INT for k in ("seen", "new", "updated", "skipped")})
CALLS = _obj({k: INT for k in ("helix", "d1", "queue")})

_RUN: dict[str, Schema] = {
    "id": INT,
    "kind": {"enum": ["scheduled", "manual"]},
    "status": {"enum": ["enqueuing", "running", "finished"]},
    "slot": {**NULL_TEXT, "description": "the cron slot ('cron:<time>'); null for a manual run"},
    "created_at": TIME,
    "enqueued_at": NULL_TIME,
    "finished_at": NULL_TIME,
    "duration_s": {"type": ["number", "null"], "description": "finished_at − created_at, or so far"},
    "jobs": _obj({k: INT for k in ("total", "done", "failed", "pending")}),
    "failure_rate": {"type": "number", "minimum": 0, "maximum": 1, "description": "failed jobs / all jobs"},
    "clips": COUNTS,
    "pages": INT,
    "calls": CALLS,
}

SCHEMAS: dict[str, Schema] = {
    "Error": _obj(
        {
            "error": {
                **TEXT,
                "description": "a stable code: malformed_request, unauthorised, not_found, "
                "conflict, payload_too_large, invalid_input, not_configured, ...",
            },
            "message": {**TEXT, "description": "what is wrong, naming the offending value"},
            "field": {**TEXT, "description": "the offending input, e.g. `backfill.from` or `streamers[3]`"},
        },
        required=["error", "message"],
    ),
    "Health": _obj({"status": {"const": "ok"}}),
    "KickRequest": _obj(
        {
            "streamers": {
                "type": "array",
                "items": {**TEXT, "minLength": 1, "pattern": "\\S"},
                "minItems": 1,
                "maxItems": MAX_KICK_STREAMERS,
                "description": "limit the run to these streamer ids (each must exist and be active)",
            },
            "backfill": _obj(
                {"from": TIME, "to": TIME},
                description=(
                    "crawl this window instead of each streamer's usual range: from < to, to not in the "
                    "future, "
                    f"from not before {EARLIEST_BACKFILL}; a history backfill may reach back years (its "
                    "windows are "
                    f"sized from the clips it finds, and its progress is in GET /runs/{{run_id}}/jobs)"
                ),
            ),
        },
        required=[],
    ),
    "KickResponse": _obj(
        {
            "run_id": INT,
            "status": {"enum": ["enqueuing", "running", "finished"]},
            "jobs": {
                **INT,
                "description": "messages sent for new jobs; streamers already held by an unfinished "
                "job of another run are not enqueued again",
            },
            "resent": {**INT, "description": "messages re-sent for stale jobs of earlier runs"},
            "finished": {"type": "boolean", "description": "true when there was nothing to crawl"},
        }
    ),
    "RunSummary": _obj(_RUN),
    "RunDetail": _obj(
        {
            **_RUN,
            "jobs_by_status": _obj({s: INT for s in JOB_STATUSES}),
            "stop_reasons": {
                "type": "object",
                "additionalProperties": INT,
                "description": "jobs by why their last invocation stopped ('none' if it has not)",
            },
        }
    ),
    "RunList": _obj(
        {
            "runs": {"type": "array", "items": _ref("RunSummary")},
            "next_before": {"type": ["integer", "null"], "description": "pass as `before` for older runs"},
        }
    ),
    "Job": _obj(
        {
            "id": INT,
            "streamer_id": TEXT,
            "login": NULL_TEXT,
            "display_name": NULL_TEXT,
            "status": {"enum": list(JOB_STATUSES)},
            "attempts": INT,
            "invocations": INT,
            "pages": INT,
            "clips": COUNTS,
            "calls": CALLS,
            "subrequests": INT,
            "max_subrequests": INT,
            "stop_reason": NULL_TEXT,
            "error": NULL_TEXT,
            "crawl_from": NULL_TIME,
            "crawl_to": NULL_TIME,
            "reached": {
                **NULL_TIME,
                "description": "the start of the window the job is in (its progress through "
                "crawl_from..crawl_to); null before it starts and once it is done",
            },
            "created_at": TIME,
            "started_at": NULL_TIME,
            "finished_at": NULL_TIME,
        }
    ),
    "JobList": _obj(
        {
            "run_id": INT,
            "jobs": {"type": "array", "items": _ref("Job")},
            "next_after": {"type": ["integer", "null"], "description": "pass as `after` for more"},
        }
    ),
    "RetryResponse": _obj(
        {
            "run_id": INT,
            "status": {"enum": ["running", "finished"]},
            "requeued": INT,
            "jobs": {"type": "array", "items": _obj({"job_id": INT, "streamer_id": TEXT})},
            "skipped": {
                "type": "array",
                "description": "failed jobs left failed, and why",
                "items": _obj({"job_id": INT, "streamer_id": TEXT, "reason": TEXT}),
            },
        }
    ),
    "Streamer": _obj(
        {
            "id": TEXT,
            "login": TEXT,
            "display_name": TEXT,
            "active": {"type": "boolean"},
            "crawled_through": NULL_TIME,
            "last_success_at": NULL_TIME,
            "last_failure_at": NULL_TIME,
            "failure_streak": INT,
            "last_error": NULL_TEXT,
            "added_at": TIME,
        }
    ),
    "StreamerList": _obj(
        {
            "streamers": {"type": "array", "items": _ref("Streamer")},
            "next_after": {"type": ["string", "null"], "description": "pass as `after` for more"},
        }
    ),
    "AddStreamersRequest": _obj(
        {
            "logins": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_LOGINS,
                "items": {"type": "string", "pattern": "^\\s*[A-Za-z0-9_]{1,25}\\s*$"},
            }
        }
    ),
    "AddStreamersResponse": _obj(
        {
            "added": {"type": "array", "items": _obj({"id": TEXT, "login": TEXT, "display_name": TEXT})},
            "unknown": {"type": "array", "items": TEXT, "description": "logins Twitch does not know"},
        }
    ),
    "Clip": _obj(
        {
            "id": TEXT,
            "url": TEXT,
            "embed_url": TEXT,
            "broadcaster_id": TEXT,
            "broadcaster_name": TEXT,
            "creator_id": TEXT,
            "creator_name": TEXT,
            "video_id": {**TEXT, "description": "'' while the VOD is unavailable"},
            "game_id": TEXT,
            "game_name": {
                **NULL_TEXT,
                "description": "null while the game is unknown (not fetched from Get Games)",
            },
            "language": TEXT,
            "title": TEXT,
            "view_count": {**INT, "maximum": MAX_SAFE_INTEGER},
            "created_at": TIME,
            "thumbnail_url": TEXT,
            "duration": {"type": "number", "minimum": 0},
            "vod_offset": {"type": ["integer", "null"]},
            "is_featured": {"type": "boolean"},
            "deleted_at": {
                **NULL_TIME,
                "description": "when a check found Twitch no longer has the clip; null while it exists",
            },
            "first_seen_at": TIME,
            "last_seen_at": TIME,
        }
    ),
    "ClipList": _obj(
        {
            "clips": {"type": "array", "items": _ref("Clip")},
            "next_after": {
                "type": ["string", "null"],
                "description": "pass as `after`, with the same filters and sort, for the next page",
            },
        }
    ),
}

_ERRORS = {
    400: (
        f"Malformed JSON (strict: UTF-8, no duplicate keys, no lone surrogates, nesting at most "
        f"{MAX_JSON_DEPTH} deep) or an unreadable request"
    ),
    401: "Missing or wrong bearer token",
    404: "No such resource",
    409: "The request conflicts with the resource's state",
    413: f"Body over {MAX_BODY_BYTES:,} bytes",
    415: f"A body that is not `{JSON_TYPE}`",
    422: "Invalid input: `field` names it, `message` says why",
    429: (
        f"More than {FAILURES_ALLOWED} wrong bearer tokens from this address in {WINDOW_SECONDS} s: every "
        "try from it is refused until `Retry-After` seconds have passed"
    ),
    502: "Twitch failed to answer",
    503: "No API token is configured (the API never runs open), or the producer is misconfigured",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(
    summary: str,
    ok: tuple[int, str, str],
    errors: list[int],
    *,
    params: list[Schema] | None = None,
    body: Schema | None = None,
    body_required: bool = False,
    public: bool = False,
) -> Schema:
    status, schema, description = ok
    responses: dict[str, Schema] = {str(status): _json(_ref(schema), description)}
    codes = sorted(
        set(errors) | ({400, 413, 415} if body else set()) | (set() if public else {401, 429, 503})
    )
    for code in codes:
        responses[str(code)] = _json(_ref("Error"), _ERRORS[code])
        if code == 429:
            responses[str(code)]["headers"] = _RETRY_AFTER
    operation: Schema = {"summary": summary, "responses": responses}
    if params:
        operation["parameters"] = params
    if body:
        operation["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": body}},
        }
    if public:
        operation["security"] = []
    return operation


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str, schema: Schema) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema}


ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}  # the largest integer D1 binds from Python
RUN_ID = _path("run_id", ID)
_SHORT = {"type": "string", "minLength": 1, "maxLength": clips_api.MAX_TEXT}
_WHEN = {
    "type": "string",
    "anyOf": [{"format": "date", "pattern": "^\\s*\\d{4}-\\d{2}-\\d{2}\\s*$"}, {"format": "date-time"}],
    "description": "a date (UTC) or an RFC 3339 timestamp with a time zone, from 1970 to 9998",
}
_CLIP_PARAMS = [
    _query("streamer", _SHORT, "a streamer's login or broadcaster id (it must be one GET /streamers lists)"),
    _query(
        "game",
        _SHORT,
        "a game id (digits; its name need not be known), or a known game's exact name (case aside)",
    ),
    _query("created_from", _WHEN, "clips created at or after this (a date: its midnight)"),
    _query(
        "created_to",
        _WHEN,
        "clips created before this (a date: that whole day is included); after created_from",
    ),
    _query("featured", {"enum": ["true", "false"]}, "only featured clips, or only the others"),
    _query(
        "deleted",
        {"enum": list(DELETED), "default": "exclude"},
        "clips Twitch deleted (deleted_at set): left out, included, or only those",
    ),
    _query(
        "sort",
        {"enum": list(SORTS), "default": "newest"},
        "newest (created_at, then id, descending) or views (view_count, then id, descending); a clip whose "
        "count moves while you page may be seen twice or missed in views order",
    ),
    _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": clips_api.PAGE_MAX, "default": clips_api.PAGE_DEFAULT},
        "clips per page",
    ),
    _query("after", {"type": "string"}, "the `next_after` of the previous page (made for the same sort)"),
]
UNKNOWN_QUERY = "Unknown query parameters are refused with 422."

SPEC: Schema = {
    "openapi": "3.1.0",
    "info": {
        "title": "clipcrawler producer API",
        "version": "1",
        "description": (
            "Runs you can see and steer. Every endpoint except /health and /openapi.json "
            "needs `Authorization: Bearer <CLIPCRAWLER_API_TOKEN>`; without a configured token "
            "every one answers 503. Request bodies are JSON objects of at most "
            f"{MAX_BODY_BYTES:,} bytes sent as `{JSON_TYPE}` (else 415); unknown fields are "
            f"refused with 422. {UNKNOWN_QUERY} Ids and cursors are at most {MAX_ID:,} "
            "(2^53 - 2, the largest integer D1 binds from a Python Worker). "
            "The dashboard (HTML) is served from / and /ui/ by the same app."
        ),
    },
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "the API token (a Worker secret)"}
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/health": {"get": _operation("Liveness; no data, no auth", (200, "Health", "Up"), [], public=True)},
        "/runs": {
            "post": _operation(
                "Kick a manual run, optionally for some streamers or over a backfill window",
                (202, "KickResponse", "Run opened; its jobs are enqueued"),
                [422],
                body=_ref("KickRequest"),
            ),
            "get": _operation(
                "Runs, newest first",
                (200, "RunList", "A page of runs"),
                [422],
                params=[
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": PAGE_MAX, "default": 20},
                        "runs per page",
                    ),
                    _query("before", ID, "only runs with a smaller id"),
                ],
            ),
        },
        "/runs/{run_id}": {
            "get": _operation(
                "One run: status, counters, duration, failure rate, stop reasons",
                (200, "RunDetail", "The run"),
                [404, 422],
                params=[RUN_ID],
            )
        },
        "/runs/{run_id}/jobs": {
            "get": _operation(
                "A run's per-streamer results, with errors",
                (200, "JobList", "A page of jobs"),
                [404, 422],
                params=[
                    RUN_ID,
                    _query("status", {"enum": list(JOB_STATUSES)}, "only jobs in this status"),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": JOBS_PAGE_MAX, "default": 100},
                        "jobs per page",
                    ),
                    _query("after", {**ID, "minimum": 0}, "only jobs with a larger id"),
                ],
            )
        },
        "/runs/{run_id}/retry-failed": {
            "post": _operation(
                "Reopen a run's failed jobs and enqueue them again",
                (202, "RetryResponse", "Jobs requeued"),
                [404, 409, 422],
                params=[RUN_ID],
                body=_obj({}, description="no fields: an empty body or {}"),
            )
        },
        "/streamers": {
            "get": _operation(
                "Streamers by login",
                (200, "StreamerList", "A page of streamers"),
                [422],
                params=[
                    _query(
                        "active",
                        {"enum": ["true", "false", "all"], "default": "all"},
                        "filter on being crawled",
                    ),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": STREAMERS_PAGE_MAX, "default": 100},
                        "streamers per page",
                    ),
                    _query(
                        "after", {"type": "string", "minLength": 1}, "the `next_after` of the previous page"
                    ),
                ],
            ),
            "post": _operation(
                "Add streamers by login (Get Users, 100 per call); unknown logins are reported",
                (200, "AddStreamersResponse", "Streamers added or re-activated"),
                [422, 502],
                body=_ref("AddStreamersRequest"),
                body_required=True,
            ),
        },
        "/clips": {
            "get": _operation(
                "Clips, newest or most viewed, filtered by streamer, game, creation time, featured and "
                "deleted",
                (200, "ClipList", "A page of clips"),
                [422],
                params=_CLIP_PARAMS,
            )
        },
        "/streamers/{streamer_id}": {
            "delete": _operation(
                "Deactivate a streamer: no more crawls; its clips stay",
                (200, "Streamer", "The deactivated streamer"),
                [404, 422],
                params=[_path("streamer_id", {"type": "string", "minLength": 1})],
            )
        },
    },
}


# POST /streamers also answers 503 when Twitch is rate limiting the app: Retry-After says for how long.
SPEC["paths"]["/streamers"]["post"]["responses"]["503"] = {
    **_json(_ref("Error"), _ERRORS[503] + "; or Twitch is rate limiting the app (`upstream_rate_limited`)"),
    "headers": {
        "Retry-After": {
            **_RETRY_AFTER["Retry-After"],
            "description": "seconds until Twitch's rate limit resets (when rate limited)",
        }
    },
}


def render() -> str:
    return json.dumps(SPEC, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
