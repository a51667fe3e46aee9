-- The support desk (pipeline/desk): find a statement by claim number or email address (by member id
-- and statement id the existing indexes serve), and hold an address change until a supervisor
-- decides it. Portable SQL.
--
-- statement_claims: the keyed hash of each claim number on a statement (pipeline/ledger/claims.py),
-- written by compose; never the claim number. Statements composed before this migration have none
-- until a compose of their period finds their lines unchanged.
CREATE TABLE statement_claims (
    claim_hash    TEXT NOT NULL,
    statement_id  TEXT NOT NULL REFERENCES statements (statement_id),
    PRIMARY KEY (claim_hash, statement_id)
);

CREATE INDEX statement_claims_statement ON statement_claims (statement_id);

-- A search by email address looks up its keyed hash (the suppression list's HMAC).
CREATE INDEX statements_address_hash ON statements (address_hash);

-- Is a statement's address suppressed: by its address, or by the statement's own bounce.
CREATE INDEX suppressions_statement ON suppressions (statement_id);

-- An address change an agent recorded, until a supervisor approves or rejects it (two-person
-- rule), or it expires: its statement can no longer use a new address (moved to paper, resend
-- stopped, superseded, swept) or it waited longer than the verification window. The new address
-- is kept only sealed (Fernet, keyed from the desk's secret) and only while the change waits: it
-- is erased when the change leaves `pending`. email_masked is what the pages show.
CREATE TABLE address_changes (
    change_id        TEXT PRIMARY KEY,
    statement_id     TEXT NOT NULL REFERENCES statements (statement_id),
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
    requested_by     TEXT NOT NULL,
    requested_at     TEXT NOT NULL,
    reason           TEXT NOT NULL,
    verified_via     TEXT NOT NULL,
    email_masked     TEXT NOT NULL,
    sealed_address   TEXT,
    decided_by       TEXT,
    decided_at       TEXT,
    decision_reason  TEXT
);

CREATE UNIQUE INDEX address_changes_one_pending ON address_changes (statement_id) WHERE state = 'pending';

CREATE INDEX address_changes_state ON address_changes (state, requested_at);
