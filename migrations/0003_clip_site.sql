-- Issue 15: deleted clips, games, and the indexes of GET /clips, the clip browser and the streamer page.
ALTER TABLE clips ADD COLUMN deleted_at TEXT;
ALTER TABLE clips ADD COLUMN view_digits INTEGER NOT NULL DEFAULT 0;
UPDATE clips SET view_digits = length(view_count);

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
