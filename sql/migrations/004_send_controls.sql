-- Send controls: pauses and suspensions per pool × provider, warm-up usage counters, and
-- adaptive throttling state carried from one send task to the next. Portable SQL.

-- An operator's pause or a provider's suspension. provider '*' means the whole pool.
-- Active while lifted_at IS NULL and (ends_at IS NULL or ends_at > now).
CREATE TABLE send_pauses (
    pause_id       TEXT PRIMARY KEY,
    pool           TEXT NOT NULL,
    provider       TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('operator', 'suspend')),
    reason         TEXT NOT NULL,
    actor          TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    ends_at        TEXT,
    lifted_at      TEXT,
    lifted_by      TEXT,
    lifted_reason  TEXT
);

CREATE INDEX send_pauses_pool ON send_pauses (pool, lifted_at);

-- Messages a pool started (or reserved to start) per UTC hour: warm-up caps and the count of
-- sending days both come from here, never from calendar days.
CREATE TABLE pool_usage (
    pool        TEXT NOT NULL,
    usage_day   TEXT NOT NULL,
    usage_hour  INTEGER NOT NULL CHECK (usage_hour BETWEEN 0 AND 23),
    messages    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pool, usage_day, usage_hour)
);

-- The rate a provider lane fell to after its last throttling reply, and when.
CREATE TABLE send_throttle (
    pool          TEXT NOT NULL,
    provider      TEXT NOT NULL,
    rate          REAL NOT NULL,
    decreased_at  TEXT NOT NULL,
    PRIMARY KEY (pool, provider)
);
