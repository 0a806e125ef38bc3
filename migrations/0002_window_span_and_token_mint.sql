-- Migration 0003: remember the window span that worked per streamer (and per job, across continuations),
-- and let one consumer claim the mint of a replacement app token (issue 16).
ALTER TABLE streamers ADD COLUMN window_span INTEGER;
ALTER TABLE jobs ADD COLUMN window_span INTEGER;
ALTER TABLE jobs ADD COLUMN window_clips INTEGER NOT NULL DEFAULT 0;
ALTER TABLE app_tokens ADD COLUMN minting_until TEXT;
