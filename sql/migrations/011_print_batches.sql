-- Print batches and their pieces. A batch is one mail class on one day, handed to the print
-- vendor as a PDF, a manifest and a control file (docs/paper.md); `files` keeps each file's
-- name, size and SHA-256 so a re-drop can prove it sends the same bytes. A batch is recorded
-- (`delivering`, its pieces `batched`) before it is delivered, so a failure in between leaves a
-- batch to deliver again, never pieces to batch twice. A piece is one
-- statement in one batch; `live` is 0 once the vendor rejected it or the batch was cancelled (the
-- statement went back to the paper queue), so a statement is in at most one live batch. The
-- Intelligent Mail barcode serial is never reused within 45 days (USPS asks for 45
-- days per Mailer ID: serials are issued in order and wrap, and a run that would reuse one
-- within 45 days is refused). Sheets and mail class are the cost facts finance reads. A forwarded
-- piece's new address, as the vendor reported it, waits in paper_forwarding for verification.
-- Portable SQL.

CREATE TABLE print_batches (
    batch_name      TEXT PRIMARY KEY,
    batch_day       TEXT NOT NULL,
    mail_class      TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('delivering', 'delivered', 'acknowledged', 'cancelled')),
    pieces          INTEGER NOT NULL,
    sheets          INTEGER NOT NULL,
    pages           INTEGER NOT NULL,
    files           TEXT NOT NULL,
    drop_where      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    ack_due_at      TEXT NOT NULL,
    acknowledged_at TEXT,
    cancelled_at    TEXT,
    accepted        INTEGER NOT NULL DEFAULT 0,
    rejected        INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX print_batches_day ON print_batches (batch_day);

CREATE TABLE batch_pieces (
    batch_name    TEXT NOT NULL REFERENCES print_batches (batch_name),
    statement_id  TEXT NOT NULL REFERENCES statements (statement_id),
    sequence      INTEGER NOT NULL,
    pages         INTEGER NOT NULL,
    sheets        INTEGER NOT NULL,
    mail_class    TEXT NOT NULL,
    imb_serial    INTEGER NOT NULL,
    live          INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (batch_name, statement_id)
);

CREATE UNIQUE INDEX batch_pieces_one_live ON batch_pieces (statement_id) WHERE live = 1;
CREATE INDEX batch_pieces_serial ON batch_pieces (imb_serial);

CREATE TABLE paper_forwarding (
    statement_id  TEXT NOT NULL REFERENCES statements (statement_id),
    received_at   TEXT NOT NULL,
    new_address   TEXT NOT NULL,
    PRIMARY KEY (statement_id, received_at)
);
