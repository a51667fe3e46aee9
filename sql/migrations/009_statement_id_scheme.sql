-- How a run's statement ids are made. Statement ids travel in every email (Message-ID,
-- X-EOB-Statement, the VERP return path), so they are a keyed hash (HMAC-SHA-256 with
-- EOB_STATEMENT_ID_KEY) of member ID, period and version: 'hmac-sha256'. Runs composed before
-- had an unkeyed SHA-256 ('sha256'), which anyone holding one email could match by trying every
-- member ID; such a run keeps its scheme, so that a re-compose of its period (a corrected
-- extract) gives the ids its statements already have instead of duplicates. New runs, and runs
-- with no statement yet, get the keyed scheme. Portable SQL: SQLite and PostgreSQL both add a
-- column with a default and a CHECK constraint.

ALTER TABLE runs ADD COLUMN statement_id_scheme TEXT NOT NULL DEFAULT 'hmac-sha256'
    CHECK (statement_id_scheme IN ('sha256', 'hmac-sha256'));

-- A run composed before this migration has unkeyed ids.
UPDATE runs SET statement_id_scheme = 'sha256'
WHERE EXISTS (SELECT 1 FROM statements s WHERE s.run_id = runs.run_id);
