-- Paper statuses: `batched` (in a print batch handed to the vendor, not yet acknowledged) and
-- `paper_exception` (on paper, but its mailing address cannot be printed: support corrects it).
-- The statements.status CHECK constraint gains both values.
--
-- SQLite cannot alter a CHECK constraint: the table is rebuilt as in 005 (columns in order:
-- 001's, 003's, 007's; the indexes of 001, 003 and 006 recreated). Foreign keys are off while
-- migrations run and checked before they commit.

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
                         'superseded', 'batched', 'paper_exception')),
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
    replaces         TEXT,
    address_hash     TEXT
);

INSERT INTO statements_new (
    statement_id, run_id, period, member_id, version, shard, status, channel, paper_reason, pool,
    email_domain, line_count, prompt_notice, object_key, print_key, sha256, pages, size_bytes,
    attempts, next_attempt_at, bounce_category, last_reason, created_at, updated_at,
    content_hash, replaces, address_hash)
SELECT
    statement_id, run_id, period, member_id, version, shard, status, channel, paper_reason, pool,
    email_domain, line_count, prompt_notice, object_key, print_key, sha256, pages, size_bytes,
    attempts, next_attempt_at, bounce_category, last_reason, created_at, updated_at,
    content_hash, replaces, address_hash
FROM statements;

DROP TABLE statements;

ALTER TABLE statements_new RENAME TO statements;

CREATE INDEX statements_run_status ON statements (run_id, status);
CREATE INDEX statements_run_shard ON statements (run_id, shard, status);
CREATE INDEX statements_pool_status ON statements (pool, status);
CREATE INDEX statements_member ON statements (member_id);
CREATE INDEX statements_period_member ON statements (period, member_id, version);
CREATE INDEX statements_replaces ON statements (replaces);
