-- Paper: print batches for the vendor, and what the vendor sends back (pipeline/stages/paper.py,
-- pipeline/stages/paper_vendor.py). A statement is in at most one live batch (a unique index).
-- A piece is a statement or a prompt notice: batch_pieces.statement_id holds either id.

-- name: paper_candidates
-- On paper since before the cut-off: the time of its latest move into paper_queued (whatever
-- moved it: routing, the sweeper, a corrected member file, a vendor's rejection), never
-- updated_at, which a print variant rendered by the first try of the day also changes.
SELECT s.statement_id, s.run_id, s.period, s.shard, s.member_id, s.print_key
FROM statements s
WHERE s.status = 'paper_queued'
  AND (SELECT MAX(e.at) FROM statement_events e
       WHERE e.statement_id = s.statement_id AND e.to_status = 'paper_queued') <= :cutoff
ORDER BY s.statement_id;

-- name: paper_set_print_key
UPDATE statements SET print_key = :print_key, updated_at = :at
WHERE statement_id = :statement_id AND status = 'paper_queued';

-- name: paper_batches_for_day
SELECT batch_name FROM print_batches WHERE batch_day = :day ORDER BY batch_name;

-- name: paper_last_serial
SELECT p.imb_serial AS serial
FROM batch_pieces p JOIN print_batches b ON b.batch_name = p.batch_name
ORDER BY b.created_at DESC, b.batch_name DESC, p.sequence DESC
LIMIT 1;

-- name: paper_serials_since
SELECT COUNT(*) AS n
FROM batch_pieces p JOIN print_batches b ON b.batch_name = p.batch_name
WHERE b.created_at >= :since;

-- name: paper_latest_serial_of
SELECT p.imb_serial
FROM batch_pieces p JOIN print_batches b ON b.batch_name = p.batch_name
WHERE p.statement_id = :statement_id
ORDER BY b.created_at DESC
LIMIT 1;

-- name: paper_forwarding_known
SELECT 1 AS known FROM paper_forwarding WHERE statement_id = :statement_id AND new_address = :new_address;

-- name: paper_insert_batch
INSERT INTO print_batches (batch_name, batch_day, mail_class, state, pieces, sheets, pages, files,
                           drop_where, created_at, ack_due_at)
VALUES (:batch_name, :batch_day, :mail_class, :state, :pieces, :sheets, :pages, :files,
        :drop_where, :created_at, :ack_due_at);

-- name: paper_insert_piece
INSERT INTO batch_pieces (batch_name, statement_id, sequence, pages, sheets, mail_class, imb_serial)
VALUES (:batch_name, :statement_id, :sequence, :pages, :sheets, :mail_class, :imb_serial);

-- name: paper_batch
SELECT batch_name, batch_day, mail_class, state, pieces, sheets, pages, files, drop_where,
       created_at, ack_due_at, acknowledged_at, cancelled_at, accepted, rejected
FROM print_batches WHERE batch_name = :batch_name;

-- name: paper_batches
SELECT batch_name, batch_day, mail_class, state, pieces, sheets, pages, drop_where, created_at,
       ack_due_at, acknowledged_at, cancelled_at, accepted, rejected
FROM print_batches
ORDER BY batch_day DESC, batch_name;

-- name: paper_batch_pieces
SELECT p.statement_id, p.sequence, p.pages, p.sheets, p.mail_class, p.imb_serial, p.live,
       COALESCE(s.status, n.status) AS status
FROM batch_pieces p
LEFT JOIN statements s ON s.statement_id = p.statement_id
LEFT JOIN prompt_notices n ON n.notice_id = p.statement_id
WHERE p.batch_name = :batch_name
ORDER BY p.sequence;

-- name: paper_live_piece
-- a piece is a statement or a prompt notice (its id in statement_id): its status is the one it has
SELECT p.batch_name, p.sequence, p.pages, COALESCE(s.status, n.status) AS status
FROM batch_pieces p
LEFT JOIN statements s ON s.statement_id = p.statement_id
LEFT JOIN prompt_notices n ON n.notice_id = p.statement_id
WHERE p.statement_id = :statement_id AND p.live = 1;

-- name: paper_end_piece
UPDATE batch_pieces SET live = 0 WHERE batch_name = :batch_name AND statement_id = :statement_id;

-- name: paper_set_batch_state
UPDATE print_batches SET state = :state, acknowledged_at = :acknowledged_at,
                         cancelled_at = :cancelled_at, accepted = :accepted, rejected = :rejected
WHERE batch_name = :batch_name;

-- name: paper_overdue_batches
SELECT batch_name, state, ack_due_at FROM print_batches
WHERE state IN ('delivering', 'delivered') AND ack_due_at < :now
ORDER BY batch_name;

-- name: paper_undelivered_batches
SELECT batch_name, batch_day, files FROM print_batches WHERE state = 'delivering' ORDER BY batch_name;

-- name: paper_mark_delivered
UPDATE print_batches SET state = 'delivered', ack_due_at = :ack_due_at
WHERE batch_name = :batch_name AND state = 'delivering';

-- name: paper_returned_statements
SELECT DISTINCT statement_id FROM statement_events WHERE event = 'returned_to_sender';

-- name: paper_open_pieces
SELECT COUNT(*) AS n FROM batch_pieces p
LEFT JOIN statements s ON s.statement_id = p.statement_id
LEFT JOIN prompt_notices n ON n.notice_id = p.statement_id
WHERE p.batch_name = :batch_name AND p.live = 1 AND COALESCE(s.status, n.status) = 'batched';

-- name: paper_not_mailed_since
SELECT s.statement_id, s.status
FROM statements s
WHERE s.status IN ('paper_queued', 'paper_exception', 'batched', 'printed')
  AND (SELECT MIN(e.at) FROM statement_events e
       WHERE e.statement_id = s.statement_id AND e.to_status = 'paper_queued') < :since
  AND NOT EXISTS (SELECT 1 FROM statement_events o
                  WHERE o.statement_id = s.statement_id AND o.event = 'paper_overdue')
ORDER BY s.statement_id;

-- name: paper_insert_forwarding
INSERT INTO paper_forwarding (statement_id, received_at, new_address)
VALUES (:statement_id, :received_at, :new_address);

-- name: paper_status_counts
SELECT status, COUNT(*) AS n FROM statements
WHERE status IN ('paper_queued', 'paper_exception', 'batched', 'printed', 'mailed')
GROUP BY status;

-- name: paper_exceptions
SELECT statement_id, run_id, member_id, last_reason FROM statements
WHERE status = 'paper_exception'
ORDER BY statement_id;

-- name: paper_last_batched_address
SELECT detail FROM statement_events
WHERE statement_id = :statement_id AND event = 'batched'
ORDER BY event_id DESC
LIMIT 1;

-- name: paper_batches_for_run
SELECT b.batch_name, b.state, b.ack_due_at, COUNT(*) AS pieces
FROM print_batches b
JOIN batch_pieces p ON p.batch_name = b.batch_name
JOIN statements s ON s.statement_id = p.statement_id
WHERE s.run_id = :run_id
GROUP BY b.batch_name, b.state, b.ack_due_at
ORDER BY b.batch_name;

-- name: paper_forwarding_list
SELECT f.statement_id, f.received_at, f.new_address, s.status
FROM paper_forwarding f JOIN statements s ON s.statement_id = f.statement_id
ORDER BY f.received_at, f.statement_id;
