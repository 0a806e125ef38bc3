-- Issue 15: when each clip is next verified with Get Clips by id, and game ids Get Games did not know.
ALTER TABLE clips ADD COLUMN next_check_at TEXT;
CREATE INDEX IF NOT EXISTS clips_check_due ON clips (broadcaster_id, next_check_at, created_at);

CREATE TABLE IF NOT EXISTS games_unknown (
    id       TEXT PRIMARY KEY,
    asked_at TEXT NOT NULL
) WITHOUT ROWID;
