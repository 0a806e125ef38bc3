-- Issue 15: a history backfill's walk state (the splits not passed yet, the density measured) survives a
-- continuation, so the next invocation sizes its windows as the last one would have (consumer/split_trail.py).
ALTER TABLE jobs ADD COLUMN walk_state TEXT;
