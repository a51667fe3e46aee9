-- A `superseded` status: a statement version replaced by a corrected one before it was rendered
-- (until now closed as `failed`). The statements.status CHECK constraint gains the value.
--
-- SQLite cannot alter a CHECK constraint, so this is its table-rebuild procedure: create the new
-- table, copy every row, drop the old one, rename, recreate the indexes. The ledger runs SQLite
-- migrations with foreign keys off (statement_events and prompt_notices reference statements
-- by name, so they point at the new table once it is renamed) and checks them before it
-- commits. No trigger or view uses statements. Columns keep their order: 001's, then 003's.

CREATE TABLE statements_new (
    statement_id     TEXT PRIMARY KEY,
    run_id           TEXT NOT NULL REFERENCES runs (run_id),
    period           TEXT NOT NULL,
    member_id        TEXT NOT NULL,
    version          INTEGER NOT NULL DEFAULT 1,
    shard            INTEGER NOT NULL,
    status           TEXT NOT NULL CHECK (status IN (
                         'composed', 'rendered', 'queued', 'sent', 'delivered', 'bounced',
                         'retry_scheduled', 'verification_pending', 'verified',
                         'verification_failed', 'paper_queued', 'printed', 'mailed', 'failed',
                         'superseded')),
    channel          TEXT NOT NULL CHECK (channel IN ('email', 'paper')),
    paper_reason     TEXT,
    pool             TEXT,
    email_domain     TEXT,
    line_count       INTEGER NOT NULL,
    prompt_notice    INTEGER NOT NULL DEFAULT 0,
    object_key       TEXT,
    print_key        TEXT,
    sha256           TEXT,
    pages            INTEGER,
    size_bytes       INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    bounce_category  TEXT,
    last_reason      TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    content_hash     TEXT,
    replaces         TEXT
);

INSERT INTO statements_new (
    statement_id, run_id, period, member_id, version, shard, status, channel, paper_reason, pool,
    email_domain, line_count, prompt_notice, object_key, print_key, sha256, pages, size_bytes,
    attempts, next_attempt_at, bounce_category, last_reason, created_at, updated_at,
    content_hash, replaces)
SELECT
    statement_id, run_id, period, member_id, version, shard, status, channel, paper_reason, pool,
    email_domain, line_count, prompt_notice, object_key, print_key, sha256, pages, size_bytes,
    attempts, next_attempt_at, bounce_category, last_reason, created_at, updated_at,
    content_hash, replaces
FROM statements;

DROP TABLE statements;

ALTER TABLE statements_new RENAME TO statements;

CREATE INDEX statements_run_status ON statements (run_id, status);
CREATE INDEX statements_run_shard ON statements (run_id, shard, status);
CREATE INDEX statements_pool_status ON statements (pool, status);
CREATE INDEX statements_member ON statements (member_id);
CREATE INDEX statements_period_member ON statements (period, member_id, version);
