-- The ledger: one row per statement with a forward-only status, and an append-only timeline.
-- Portable SQL: the same file runs on SQLite and PostgreSQL. Timestamps are ISO-8601 UTC text.

CREATE TABLE runs (
    run_id        TEXT PRIMARY KEY,
    period        TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    state         TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'succeeded', 'failed')),
    source        TEXT NOT NULL,
    shards        INTEGER NOT NULL
);

CREATE TABLE ingest_files (
    run_id            TEXT NOT NULL REFERENCES runs (run_id),
    source_file       TEXT NOT NULL,
    kind              TEXT NOT NULL,
    rows_read         INTEGER NOT NULL,
    rows_accepted     INTEGER NOT NULL,
    rows_quarantined  INTEGER NOT NULL,
    PRIMARY KEY (run_id, source_file),
    CHECK (rows_read = rows_accepted + rows_quarantined)
);

CREATE TABLE quarantine (
    run_id       TEXT NOT NULL REFERENCES runs (run_id),
    source_file  TEXT NOT NULL,
    row_number   INTEGER NOT NULL,
    field        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    PRIMARY KEY (run_id, source_file, row_number)
);

CREATE TABLE statements (
    statement_id     TEXT PRIMARY KEY,
    run_id           TEXT NOT NULL REFERENCES runs (run_id),
    period           TEXT NOT NULL,
    member_id        TEXT NOT NULL,
    version          INTEGER NOT NULL DEFAULT 1,
    shard            INTEGER NOT NULL,
    status           TEXT NOT NULL CHECK (status IN (
                         'composed', 'rendered', 'queued', 'sent', 'delivered', 'bounced',
                         'retry_scheduled', 'verification_pending', 'verified',
                         'verification_failed', 'paper_queued', 'printed', 'mailed', 'failed')),
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
    updated_at       TEXT NOT NULL
);

CREATE INDEX statements_run_status ON statements (run_id, status);
CREATE INDEX statements_run_shard ON statements (run_id, shard, status);
CREATE INDEX statements_pool_status ON statements (pool, status);
CREATE INDEX statements_member ON statements (member_id);

CREATE TABLE statement_events (
    event_id      INTEGER PRIMARY KEY,
    statement_id  TEXT NOT NULL REFERENCES statements (statement_id),
    at            TEXT NOT NULL,
    event         TEXT NOT NULL,
    from_status   TEXT,
    to_status     TEXT,
    detail        TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX statement_events_statement ON statement_events (statement_id, event_id);

CREATE TABLE bounce_messages (
    message_key   TEXT PRIMARY KEY,
    received_at   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    statement_id  TEXT,
    reason        TEXT
);

CREATE TABLE suppressions (
    address_hash  TEXT PRIMARY KEY,
    cause         TEXT NOT NULL,
    statement_id  TEXT,
    created_at    TEXT NOT NULL,
    lifted_at     TEXT,
    lifted_reason TEXT
);

CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    statement_id  TEXT,
    detail        TEXT NOT NULL DEFAULT '{}',
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL UNIQUE
);
