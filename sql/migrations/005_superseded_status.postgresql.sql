-- A `superseded` status: a statement version replaced by a corrected one before it was rendered
-- (until now closed as `failed`). The statements.status CHECK constraint gains the value.
-- PostgreSQL named 001's column constraint statements_status_check; it is replaced under the
-- same name. Every existing row satisfies the wider constraint.

ALTER TABLE statements DROP CONSTRAINT statements_status_check;

ALTER TABLE statements ADD CONSTRAINT statements_status_check CHECK (status IN (
    'composed', 'rendered', 'queued', 'sent', 'delivered', 'bounced',
    'retry_scheduled', 'verification_pending', 'verified',
    'verification_failed', 'paper_queued', 'printed', 'mailed', 'failed',
    'superseded'));
