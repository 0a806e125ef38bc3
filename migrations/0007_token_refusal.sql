-- A run whose Twitch credentials were refused remembers it, so its other jobs fail at once with the refusal
-- instead of each asking Twitch again (shared/token_store.py). A new run, or `runs retry-failed`, asks again.
ALTER TABLE app_tokens ADD COLUMN refused_run_id INTEGER;
ALTER TABLE app_tokens ADD COLUMN refused_error TEXT;
