-- Issue 15: deleted clips, games, and the indexes of GET /clips, the clip browser and the streamer page.
ALTER TABLE clips ADD COLUMN deleted_at TEXT;

CREATE INDEX IF NOT EXISTS clips_game_created ON clips (game_id, created_at);
CREATE INDEX IF NOT EXISTS clips_views ON clips (view_count, id);
CREATE INDEX IF NOT EXISTS clips_broadcaster_views ON clips (broadcaster_id, view_count, id);
CREATE INDEX IF NOT EXISTS clips_deleted_created ON clips (created_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS clips_deleted_views ON clips (view_count, id) WHERE deleted_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS clips_deleted_broadcaster ON clips (broadcaster_id, created_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS clips_deleted_game ON clips (game_id, created_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS clips_featured_game_views ON clips (game_id, view_count, id) WHERE is_featured = 1;

CREATE TABLE IF NOT EXISTS games (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    box_art_url TEXT NOT NULL DEFAULT '',
    igdb_id     TEXT NOT NULL DEFAULT '',
    fetched_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS games_name ON games (name COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS games_fetched ON games (fetched_at);

CREATE INDEX IF NOT EXISTS jobs_streamer ON jobs (streamer_id, id);
