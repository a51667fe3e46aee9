-- Whether a period's latest ingest succeeded. Ingest marks its run `running` when it starts,
-- then `succeeded` in the same transaction that replaces the run's accounts (ingest_files,
-- quarantine), or `failed` with the operator's message; compose and render refuse a period
-- whose latest ingest did not succeed instead of working from lines that are not the extract's.
-- ingest_at is when the state was last set. Portable SQL: SQLite and PostgreSQL both add a
-- column with a CHECK constraint (existing rows are NULL, which satisfies it).

ALTER TABLE runs ADD COLUMN ingest_state TEXT CHECK (ingest_state IN ('running', 'succeeded', 'failed'));

ALTER TABLE runs ADD COLUMN ingest_at TEXT;

ALTER TABLE runs ADD COLUMN ingest_error TEXT;

-- A run ingested before this migration has its accounts only when its ingest succeeded.
UPDATE runs SET ingest_state = 'succeeded', ingest_at = started_at
WHERE EXISTS (SELECT 1 FROM ingest_files f WHERE f.run_id = runs.run_id);
