-- Statement versions and prompt notices (compose).
-- A corrected extract reissues a member's statement for the same period as a new version that
-- names the statement it replaces; the content hash tells a plain re-run (same content, nothing
-- new) from a correction (different content, new version). Portable SQL: SQLite and PostgreSQL.

ALTER TABLE statements ADD COLUMN content_hash TEXT;

ALTER TABLE statements ADD COLUMN replaces TEXT;

CREATE INDEX statements_period_member ON statements (period, member_id, version);

-- Denied or reduced claims that need a notice sooner than the monthly statement (their
-- adverse-determination deadline passes before it): one row per statement and claim, with the
-- date the notice is due. Claim ids only, no claim content.
CREATE TABLE prompt_notices (
    statement_id  TEXT NOT NULL REFERENCES statements (statement_id),
    claim_id      TEXT NOT NULL,
    notice_due    TEXT NOT NULL,
    PRIMARY KEY (statement_id, claim_id)
);
