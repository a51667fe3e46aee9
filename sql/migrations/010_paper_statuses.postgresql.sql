-- Paper statuses: `batched` (in a print batch handed to the vendor, not yet acknowledged) and
-- `paper_exception` (on paper, but its mailing address cannot be printed: support corrects it).
-- The statements.status CHECK constraint gains both values, under its name from 005.

ALTER TABLE statements DROP CONSTRAINT statements_status_check;

ALTER TABLE statements ADD CONSTRAINT statements_status_check CHECK (status IN (
    'composed', 'rendered', 'queued', 'sent', 'delivered', 'bounced',
    'retry_scheduled', 'verification_pending', 'verified',
    'verification_failed', 'paper_queued', 'printed', 'mailed', 'failed',
    'superseded', 'batched', 'paper_exception'));
