-- Issue 16: new game ids are collected by each crawl and named once per run (consumer/games.py).
CREATE TABLE IF NOT EXISTS games_wanted (
    id        TEXT PRIMARY KEY,
    wanted_at TEXT NOT NULL
) WITHOUT ROWID;
