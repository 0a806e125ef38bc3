-- clipcrawler: the one DDL, used by D1 (through migrations/) and by local SQLite alike.
-- Timestamps are RFC 3339 text in UTC with a trailing Z ('2026-11-22T04:00:00Z'), so they sort as text.

-- The channels to crawl. Keyed on broadcaster id: logins can change.
CREATE TABLE IF NOT EXISTS streamers (
    id              TEXT PRIMARY KEY,              -- Twitch broadcaster id (opaque string)
    login           TEXT NOT NULL,
    display_name    TEXT NOT NULL DEFAULT '',
    active          INTEGER NOT NULL DEFAULT 1,    -- 0 = deactivated; its clips stay
    crawled_through TEXT,                          -- watermark: end of the last fully crawled window
    last_success_at TEXT,
    last_failure_at TEXT,
    failure_streak  INTEGER NOT NULL DEFAULT 0,    -- consecutive failed crawls
    last_error      TEXT,
    tier            INTEGER NOT NULL DEFAULT 0,    -- adaptive schedule: 0 = hourly, higher = less often
    next_crawl_at   TEXT,                          -- when a scheduled run next includes it; NULL = now
    last_clip_at    TEXT,                          -- creation time of its newest clip seen
    last_live_at    TEXT,                          -- last time Get Streams showed it live
    added_at        TEXT NOT NULL,
    window_span     INTEGER                        -- seconds: the crawl window span that last worked; NULL = the max
);
CREATE INDEX IF NOT EXISTS streamers_active ON streamers (active, id);
CREATE INDEX IF NOT EXISTS streamers_login ON streamers (login);

-- Every Helix clip field. Mutable ones (view_count, video_id, vod_offset, title, is_featured, ...)
-- are overwritten by the upsert; a row is rewritten only when one of them changed. By default view_count
-- is always the latest crawl's; with the opt-in CLIPCRAWLER_VIEW_COUNT_STEP > 0 a view count alone is
-- rewritten only once it moved by that share or was stored CLIPCRAWLER_VIEW_COUNT_MAX_AGE_HOURS ago.
CREATE TABLE IF NOT EXISTS clips (
    id               TEXT PRIMARY KEY,
    broadcaster_id   TEXT NOT NULL,
    broadcaster_name TEXT NOT NULL,
    creator_id       TEXT NOT NULL,
    creator_name     TEXT NOT NULL,
    video_id         TEXT NOT NULL DEFAULT '',     -- '' while the VOD is unavailable
    game_id          TEXT NOT NULL,
    language         TEXT NOT NULL,
    title            TEXT NOT NULL,
    view_count       INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    url              TEXT NOT NULL,
    embed_url        TEXT NOT NULL,
    thumbnail_url    TEXT NOT NULL,
    duration         REAL NOT NULL,
    vod_offset       INTEGER,                      -- NULL until Twitch sets it (or forever)
    is_featured      INTEGER NOT NULL DEFAULT 0,
    first_seen_at    TEXT NOT NULL,
    last_seen_at     TEXT NOT NULL,                -- last crawl that rewrote the row (and observed view_count)
    deleted_at       TEXT,                         -- when a check found Twitch no longer has it; NULL while it exists
    view_digits      INTEGER NOT NULL DEFAULT 0,   -- length(view_count), kept by the triggers below
    next_check_at    TEXT                          -- when Get Clips by id next verifies it (consumer/verify.py);
                                                   -- NULL: not checked yet, due once it leaves the lookback
);
CREATE INDEX IF NOT EXISTS clips_broadcaster_created ON clips (broadcaster_id, created_at);
CREATE INDEX IF NOT EXISTS clips_created ON clips (created_at);

-- One row per cron slot or manual kick.
CREATE TABLE IF NOT EXISTS runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    slot            TEXT UNIQUE,                   -- 'cron:2026-11-22T04:00:00Z'; NULL for manual runs
    kind            TEXT NOT NULL CHECK (kind IN ('scheduled', 'manual')),
    status          TEXT NOT NULL CHECK (status IN ('enqueuing', 'running', 'finished')),
    created_at      TEXT NOT NULL,
    backfill_from   TEXT,                          -- a manual backfill's fixed window, else NULL
    backfill_to     TEXT,
    only_streamers  TEXT,                          -- JSON list of streamer ids a manual kick is limited to
    fanout_cursor   TEXT NOT NULL DEFAULT '',      -- last streamer id given a job; slices go in id order
    enqueued_at     TEXT,
    finished_at     TEXT,
    jobs_total      INTEGER NOT NULL DEFAULT 0,
    jobs_done       INTEGER NOT NULL DEFAULT 0,
    jobs_failed     INTEGER NOT NULL DEFAULT 0,
    pages           INTEGER NOT NULL DEFAULT 0,
    clips_seen      INTEGER NOT NULL DEFAULT 0,
    clips_new       INTEGER NOT NULL DEFAULT 0,
    clips_updated   INTEGER NOT NULL DEFAULT 0,
    clips_skipped   INTEGER NOT NULL DEFAULT 0,    -- malformed clips Helix sent
    helix_calls     INTEGER NOT NULL DEFAULT 0,
    d1_calls        INTEGER NOT NULL DEFAULT 0,
    queue_sends     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, created_at);

-- One row per run and streamer: the unit of work a queue message points at.
CREATE TABLE IF NOT EXISTS jobs (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id               INTEGER NOT NULL REFERENCES runs (id),
    streamer_id          TEXT NOT NULL REFERENCES streamers (id),
    status               TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts             INTEGER NOT NULL DEFAULT 0,   -- claims, including continuations
    reclaims             INTEGER NOT NULL DEFAULT 0,   -- claims of a job whose holder went silent
    invocations          INTEGER NOT NULL DEFAULT 0,   -- consumer invocations that did work
    lease_token          TEXT,
    lease_expires_at     TEXT,
    due_at               TEXT NOT NULL,                -- when a message for it should be delivered
    crawl_from           TEXT,                         -- the whole range, fixed at the first claim
    crawl_to             TEXT,
    window_start         TEXT,                         -- the window being paged now
    window_end           TEXT,
    cursor               TEXT,                         -- Helix cursor inside that window
    cursor_at            TEXT,                         -- when it was handed out: old cursors are not trusted
    newest_clip_at       TEXT,                         -- newest clip creation time this job has seen
    window_pages         INTEGER NOT NULL DEFAULT 0,   -- pages read in that window
    pages                INTEGER NOT NULL DEFAULT 0,
    clips_seen           INTEGER NOT NULL DEFAULT 0,
    clips_new            INTEGER NOT NULL DEFAULT 0,
    clips_updated        INTEGER NOT NULL DEFAULT 0,
    clips_skipped        INTEGER NOT NULL DEFAULT 0,
    helix_calls          INTEGER NOT NULL DEFAULT 0,
    d1_calls             INTEGER NOT NULL DEFAULT 0,
    queue_sends          INTEGER NOT NULL DEFAULT 0,
    subrequests          INTEGER NOT NULL DEFAULT 0,   -- across all invocations
    max_subrequests      INTEGER NOT NULL DEFAULT 0,   -- the most any one invocation used
    stop_reason          TEXT,                         -- why the last invocation stopped
    error                TEXT,
    created_at           TEXT NOT NULL,
    started_at           TEXT,
    finished_at          TEXT,
    window_span          INTEGER,                      -- seconds: the span planned for the next windows
    window_clips         INTEGER NOT NULL DEFAULT 0,   -- distinct clips read in the current window so far
    walk_state           TEXT,                         -- JSON: a backfill's splits and density, for continuations
    UNIQUE (run_id, streamer_id)
);
CREATE INDEX IF NOT EXISTS jobs_run_status ON jobs (run_id, status);
-- The producer's sweep for jobs whose message was lost or whose consumer died.
CREATE INDEX IF NOT EXISTS jobs_unfinished_due ON jobs (due_at) WHERE status IN ('queued', 'running');
-- At most one unfinished job per streamer, whatever run it belongs to.
CREATE UNIQUE INDEX IF NOT EXISTS jobs_one_active_per_streamer
    ON jobs (streamer_id) WHERE status IN ('queued', 'running');

-- Messages that could not be processed at all (malformed, unknown job, dead-lettered).
CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    source      TEXT NOT NULL,                 -- 'consumer' or 'dlq'
    job_id      INTEGER,
    body        TEXT NOT NULL,                 -- the raw body, cut to 4,000 characters
    reason      TEXT NOT NULL
);

-- The one cached app access token (client-credentials grant), and the last low Ratelimit-* reading
-- any consumer saw, so every invocation paces itself before Twitch answers 429.
CREATE TABLE IF NOT EXISTS app_tokens (
    client_id           TEXT PRIMARY KEY,
    access_token        TEXT NOT NULL,
    expires_at          TEXT NOT NULL,
    minted_at           TEXT NOT NULL,
    ratelimit_limit     INTEGER,
    ratelimit_remaining INTEGER,
    ratelimit_reset     INTEGER,                   -- epoch seconds
    minting_until       TEXT,                      -- a consumer claimed the next mint until then (after a 401)
    refused_run_id      INTEGER,                   -- the run in which Twitch refused the client credentials
    refused_error       TEXT                       -- what Twitch said then (scrubbed): that run's jobs fail with it
);

-- View-count marks for the dashboard's hottest clips (views gained in the last 24 h): one row per clip
-- young enough to be re-crawled, replaced at most once a day by the producer's tick (producer/hot.py).
CREATE TABLE IF NOT EXISTS clip_views (
    clip_id        TEXT PRIMARY KEY,
    marked_at      TEXT NOT NULL,                -- when `views` was observed (the clip's last_seen_at)
    views          INTEGER NOT NULL,
    prev_marked_at TEXT,                         -- the mark before it, about a day earlier
    prev_views     INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS clip_views_marked ON clip_views (marked_at);

-- `clipcrawler export` (local/export/), per destination and table: how far the last successful Parquet export
-- got. Rows whose change marker (clips.last_seen_at; runs/jobs.finished_at, or NULL while unfinished) is at or
-- after `watermark` are read again next time; export_tail holds the digest of each such row as `generation`
-- wrote it, so the ones unchanged since are skipped. Written only by the exporter; unused on D1 itself.
CREATE TABLE IF NOT EXISTS export_state (
    destination TEXT NOT NULL,                     -- 'file:///srv/clips-export', 's3://bucket/prefix'
    table_name  TEXT NOT NULL,                     -- 'clips', 'runs', 'jobs'
    source      TEXT NOT NULL,                     -- 'local' or 'd1'
    watermark   TEXT,                              -- NULL: the table was empty; the next export reads it all
    generation  TEXT NOT NULL,                     -- the export (id) that wrote this row and its export_tail rows
    exported_at TEXT NOT NULL,
    rows        INTEGER NOT NULL DEFAULT 0,        -- rows that export wrote
    tail_rows   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (destination, table_name)
);
CREATE TABLE IF NOT EXISTS export_tail (
    destination TEXT NOT NULL,
    table_name  TEXT NOT NULL,
    generation  TEXT NOT NULL,
    row_key     TEXT NOT NULL,                     -- the row's id, as text
    digest      TEXT NOT NULL,
    PRIMARY KEY (destination, table_name, generation, row_key)
);

-- The dashboard's failing streamers, worst first. Partial: a streamer whose streak stays 0 (the usual
-- case) is never in it, so crawls that succeed write nothing to it.
CREATE INDEX IF NOT EXISTS streamers_failing ON streamers (failure_streak DESC, login) WHERE failure_streak > 0;

-- Dashboard sessions ended by logout: a cookie whose session id is here is refused, every copy of it.
-- Written once per logout; rows past expires_at are pruned then (the cookie's own expiry refuses it).
CREATE TABLE IF NOT EXISTS ended_sessions (
    id         TEXT PRIMARY KEY,                   -- the session's random id (from its cookie)
    expires_at INTEGER NOT NULL                    -- epoch seconds; past it the cookie is dead anyway
) WITHOUT ROWID;

-- Clients refused (429) after too many failed logins or bearer tokens. Failures are counted outside D1
-- (producer/throttle.py); only the block itself is written, once per blocked client per window and at
-- most 20 a minute in all, so a flood of bad tries cannot spend the D1 writes the crawl lives on.
CREATE TABLE IF NOT EXISTS auth_blocks (
    client        TEXT PRIMARY KEY,                -- the caller's address (CF-Connecting-IP on Workers)
    blocked_until INTEGER NOT NULL                 -- epoch seconds
) WITHOUT ROWID;

-- GET /clips and the dashboard's clip browser (producer/clip_search.py): an index per order (newest, most
-- viewed) and leading filter (none, streamer, game, deleted only), so a page is one index range, except
-- a game's clips by views (a game's few clips are sorted; a big game walks clips_views_magnitude). D1 counts
-- a row written per index an UPDATE's SET list touches, changed or not: so most viewed is indexed by
-- view_digits (length(view_count), kept by the two triggers, rewritten only when a count gains a digit),
-- and a page sorts within one magnitude. A new clip costs 3 more rows, a rewrite 1 (clips_game_created: the
-- upsert sets game_id), a count gaining a digit 3 more (`python -m bench.clips_writes`); the partial
-- (deleted, featured) indexes keep view_count, as they cost only for a deleted or featured clip.
CREATE INDEX IF NOT EXISTS clips_game_created ON clips (game_id, created_at);
CREATE TRIGGER IF NOT EXISTS clips_view_digits_inserted AFTER INSERT ON clips
WHEN NEW.view_digits IS NOT length(NEW.view_count)
BEGIN UPDATE clips SET view_digits = length(NEW.view_count) WHERE id = NEW.id; END;
CREATE TRIGGER IF NOT EXISTS clips_view_digits_moved AFTER UPDATE OF view_count ON clips
WHEN NEW.view_digits IS NOT length(NEW.view_count)
BEGIN UPDATE clips SET view_digits = length(NEW.view_count) WHERE id = NEW.id; END;
CREATE INDEX IF NOT EXISTS clips_views_magnitude ON clips (view_digits);
CREATE INDEX IF NOT EXISTS clips_broadcaster_views_magnitude ON clips (broadcaster_id, view_digits);
CREATE INDEX IF NOT EXISTS clips_deleted_created ON clips (created_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS clips_deleted_views ON clips (view_count, id) WHERE deleted_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS clips_deleted_broadcaster ON clips (broadcaster_id, created_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS clips_deleted_game ON clips (game_id, created_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS clips_featured_game_views ON clips (game_id, view_count, id) WHERE is_featured = 1;

-- Games (Get Games), by the game_id clips carry. A clip's game may be unknown here (not fetched yet, or
-- Twitch has no such game): every reader shows the id, or nothing, then. A verification that marks or
-- unmarks clips.deleted_at must move last_seen_at too, so the Parquet export sees the change.
CREATE TABLE IF NOT EXISTS games (
    id          TEXT PRIMARY KEY,                  -- Twitch game (category) id
    name        TEXT NOT NULL,
    box_art_url TEXT NOT NULL DEFAULT '',          -- a template: {width}x{height} to fill in
    igdb_id     TEXT NOT NULL DEFAULT '',          -- '' when Twitch has none
    fetched_at  TEXT NOT NULL                      -- when Get Games last answered for it
);
CREATE INDEX IF NOT EXISTS games_name ON games (name COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS games_fetched ON games (fetched_at);

-- A streamer's page: its last jobs, newest first.
CREATE INDEX IF NOT EXISTS jobs_streamer ON jobs (streamer_id, id);

-- Verification (consumer/verify.py): a streamer's clips due for a Get Clips by id check, in due order; the
-- never-checked ones (NULL) by creation time. One index row per new clip; the upsert never sets next_check_at,
-- so a rewrite of a clip does not touch it.
CREATE INDEX IF NOT EXISTS clips_check_due ON clips (broadcaster_id, next_check_at, created_at);

-- Game ids Get Games did not know when asked (consumer/games.py): not wanted again until `asked_at` is old.
CREATE TABLE IF NOT EXISTS games_unknown (
    id       TEXT PRIMARY KEY,                     -- a game_id clips carry that Twitch has no game for
    asked_at TEXT NOT NULL
) WITHOUT ROWID;

-- Game ids crawls brought in that no reader can name yet (consumer/games.py): added by each job's last write,
-- named through Get Games (100 a call) by the invocation that finishes the run, then removed.
CREATE TABLE IF NOT EXISTS games_wanted (
    id        TEXT PRIMARY KEY,                    -- a game_id clips carry, neither in games nor games_unknown
    wanted_at TEXT NOT NULL
) WITHOUT ROWID;
