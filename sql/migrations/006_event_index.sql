-- Statements by timeline event (the flagged-after-release lookups of compose, reconcile and the
-- deadline sweeper), without scanning every event.
CREATE INDEX statement_events_event ON statement_events (event, statement_id);
