-- Dashboard sessions ended by logout, and clients blocked after too many failed logins or bearer tokens.
CREATE TABLE IF NOT EXISTS ended_sessions (
    id         TEXT PRIMARY KEY,                   -- the session's random id (from its cookie)
    expires_at INTEGER NOT NULL                    -- epoch seconds; past it the cookie is dead anyway
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS auth_blocks (
    client        TEXT PRIMARY KEY,                -- the caller's address (CF-Connecting-IP on Workers)
    blocked_until INTEGER NOT NULL                 -- epoch seconds
) WITHOUT ROWID;
