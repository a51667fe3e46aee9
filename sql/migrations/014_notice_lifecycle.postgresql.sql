-- Prompt notices are sent (pipeline/stages/notices.py, the eob_notices DAG): each flagged claim's
-- notice gets an opaque id (`nt-` + a keyed hash of statement and claim ids, filled in by the
-- notices stage for rows compose made), a status of its own (pipeline/ledger/notices.py:
-- due, sent, paper_queued, batched, printed, mailed, superseded), the day it leaves and whether
-- that is after notice_due, the pool it was emailed from, its stored copies (the encrypted email
-- copy, the print variant), its send attempts and last reason. Rows flagged before this migration
-- start `due`.
--
-- A notice on paper is a piece of the day's print batch like a statement: batch_pieces.statement_id
-- now holds a statement id or a notice id, so its foreign key to statements goes (PostgreSQL named
-- 011's column constraint batch_pieces_statement_id_fkey).

ALTER TABLE prompt_notices ADD COLUMN notice_id TEXT;

ALTER TABLE prompt_notices ADD COLUMN status TEXT NOT NULL DEFAULT 'due' CHECK (status IN (
    'due', 'sent', 'paper_queued', 'batched', 'printed', 'mailed', 'superseded'));

ALTER TABLE prompt_notices ADD COLUMN left_on TEXT;

ALTER TABLE prompt_notices ADD COLUMN late INTEGER;

ALTER TABLE prompt_notices ADD COLUMN pool TEXT;

ALTER TABLE prompt_notices ADD COLUMN object_key TEXT;

ALTER TABLE prompt_notices ADD COLUMN print_key TEXT;

ALTER TABLE prompt_notices ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;

ALTER TABLE prompt_notices ADD COLUMN last_reason TEXT;

ALTER TABLE prompt_notices ADD COLUMN updated_at TEXT;

CREATE UNIQUE INDEX prompt_notices_notice_id ON prompt_notices (notice_id);

CREATE INDEX prompt_notices_status ON prompt_notices (status, updated_at);

ALTER TABLE batch_pieces DROP CONSTRAINT batch_pieces_statement_id_fkey;
