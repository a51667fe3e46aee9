-- Statements by timeline event (the follow-up lookups of compose, reconcile and the deadline
-- sweeper) and by the version that replaces them (the report's reissue checks), without
-- scanning whole tables.
CREATE INDEX statement_events_event ON statement_events (event, statement_id);
CREATE INDEX statements_replaces ON statements (replaces);
