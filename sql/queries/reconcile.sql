-- Reconciliation: bounce routing, retry/verification queues, suppression list, the sweeper.
-- Portable SQL (SQLite and PostgreSQL); named bind parameters only.

-- name: reconcile_due_retries
SELECT s.statement_id, s.pool, s.attempts, s.bounce_category, s.run_id, r.started_at AS run_started_at
FROM statements s JOIN runs r ON r.run_id = s.run_id
WHERE s.status = 'retry_scheduled' AND s.next_attempt_at <= :now
ORDER BY s.next_attempt_at, s.statement_id
LIMIT :limit;

-- name: reconcile_verified
SELECT s.statement_id, s.run_id, s.member_id, s.pool, s.bounce_category, r.started_at AS run_started_at
FROM statements s JOIN runs r ON r.run_id = s.run_id
WHERE s.status = 'verified'
ORDER BY s.statement_id;

-- name: reconcile_bounces_since
SELECT at, detail FROM statement_events WHERE event = 'bounced' AND at >= :since ORDER BY at;

-- name: reconcile_queue_counts
SELECT status, COUNT(*) AS n FROM statements
WHERE run_id = :run_id AND bounce_category IS NOT NULL
GROUP BY status;

-- name: reconcile_last_event
SELECT at, detail FROM statement_events
WHERE statement_id = :statement_id AND event = :event
ORDER BY event_id DESC LIMIT 1;

-- name: verify_pending
SELECT s.statement_id, s.member_id, s.run_id, s.period, s.email_domain, s.bounce_category,
       s.updated_at AS requested_at, r.started_at AS run_started_at
FROM statements s JOIN runs r ON r.run_id = s.run_id
WHERE s.status = 'verification_pending'
ORDER BY s.updated_at, s.statement_id;

-- name: sweep_candidates
SELECT s.statement_id, s.status, s.updated_at, r.started_at AS run_started_at,
       (SELECT COUNT(*) FROM statement_events e
        WHERE e.statement_id = s.statement_id AND e.event = 'returned_to_sender') AS returned
FROM statements s JOIN runs r ON r.run_id = s.run_id
WHERE s.status IN ('composed', 'rendered', 'queued', 'sent', 'bounced', 'retry_scheduled',
                   'verification_pending', 'verified')
  AND s.statement_id > :after
ORDER BY s.statement_id
LIMIT :limit;

-- name: sweep_unsettled_for_run
SELECT status, COUNT(*) AS n FROM statements
WHERE run_id = :run_id
  AND status NOT IN ('delivered', 'paper_queued', 'paper_exception', 'batched', 'printed', 'mailed',
                     'failed', 'superseded')
GROUP BY status;

-- name: suppression_upsert
INSERT INTO suppressions (address_hash, cause, statement_id, created_at)
VALUES (:address_hash, :cause, :statement_id, :at)
ON CONFLICT (address_hash) DO UPDATE SET
    cause = excluded.cause,
    statement_id = excluded.statement_id,
    created_at = excluded.created_at,
    lifted_at = NULL,
    lifted_reason = NULL
WHERE suppressions.lifted_at IS NOT NULL;

-- name: suppression_get
SELECT address_hash, cause, statement_id, created_at, lifted_at, lifted_reason
FROM suppressions WHERE address_hash = :address_hash;

-- name: suppression_for_statement
SELECT address_hash, cause, statement_id, created_at, lifted_at, lifted_reason
FROM suppressions WHERE statement_id = :statement_id ORDER BY created_at;

-- name: suppression_lift
UPDATE suppressions SET lifted_at = :at, lifted_reason = :reason
WHERE address_hash = :address_hash AND lifted_at IS NULL;
