-- Queries of the support desk (pipeline/desk): the statement page, the search by each key, the
-- address changes awaiting a supervisor; and compose's record of each statement's claim hashes.
-- Portable SQL (SQLite and PostgreSQL); named bind parameters only.

-- name: desk_statement
-- one statement as the desk shows it: its run's start (the deadlines), whether its address is
-- suppressed (by the address, or by the statement's own bounce) and the address change waiting
-- for a supervisor, if any (at most one: address_changes_one_pending)
SELECT s.statement_id, s.run_id, s.period, s.member_id, s.version, s.status, s.channel,
       s.paper_reason, s.pool, s.email_domain, s.attempts, s.next_attempt_at, s.created_at,
       s.updated_at, r.started_at AS run_started_at,
       CASE WHEN EXISTS (SELECT 1 FROM suppressions u
                         WHERE u.lifted_at IS NULL
                           AND (u.address_hash = s.address_hash OR u.statement_id = s.statement_id))
            THEN 1 ELSE 0 END AS suppressed,
       c.change_id, c.requested_by, c.requested_at, c.reason AS change_reason, c.verified_via,
       c.email_masked AS change_email_masked
FROM statements s
JOIN runs r ON r.run_id = s.run_id
LEFT JOIN address_changes c ON c.statement_id = s.statement_id AND c.state = 'pending'
WHERE s.statement_id = :statement_id;

-- name: desk_search_statement
SELECT statement_id, period, version, status, channel, member_id
FROM statements WHERE statement_id = :statement_id;

-- name: desk_search_member
-- one recipient's statements: a subscriber's by the card's member id, a patient's own by
-- `<member id>~<patient>` (a subscriber's search never lists a patient's own statements)
SELECT statement_id, period, version, status, channel, member_id
FROM statements
WHERE member_id = :member_id
ORDER BY period DESC, member_id, version DESC
LIMIT :limit;

-- name: desk_search_claim
SELECT s.statement_id, s.period, s.version, s.status, s.channel, s.member_id
FROM statement_claims c JOIN statements s ON s.statement_id = c.statement_id
WHERE c.claim_hash = :claim_hash
ORDER BY s.period DESC, s.member_id, s.version DESC
LIMIT :limit;

-- name: desk_search_email
SELECT statement_id, period, version, status, channel, member_id
FROM statements WHERE address_hash = :address_hash
ORDER BY period DESC, member_id, version DESC
LIMIT :limit;

-- name: desk_insert_change
INSERT INTO address_changes (change_id, statement_id, state, requested_by, requested_at, reason,
                             verified_via, email_masked, sealed_address)
VALUES (:change_id, :statement_id, 'pending', :requested_by, :requested_at, :reason,
        :verified_via, :email_masked, :sealed_address);

-- name: desk_change
SELECT change_id, statement_id, state, requested_by, requested_at, reason, verified_via,
       email_masked, sealed_address, decided_by, decided_at, decision_reason
FROM address_changes WHERE change_id = :change_id;

-- name: desk_pending_changes
SELECT change_id, statement_id, requested_by, requested_at, reason, verified_via, email_masked
FROM address_changes WHERE state = 'pending'
ORDER BY requested_at, change_id;

-- name: desk_pending_changes_of_statements
-- every waiting change with its statement's status and channel: the expiry sweep's candidates
-- (few: a change waits days at most)
SELECT c.change_id, c.statement_id, c.requested_at, s.status, s.channel
FROM address_changes c JOIN statements s ON s.statement_id = c.statement_id
WHERE c.state = 'pending'
ORDER BY c.requested_at, c.change_id;

-- name: desk_pending_change_of_statement
SELECT change_id FROM address_changes WHERE statement_id = :statement_id AND state = 'pending';

-- name: desk_decide_change
-- the decision (approved, rejected, expired) is taken by whoever moves it out of `pending` first;
-- the sealed address is erased with it
UPDATE address_changes
SET state = :state, decided_by = :decided_by, decided_at = :decided_at, decision_reason = :reason,
    sealed_address = NULL
WHERE change_id = :change_id AND state = 'pending';

-- name: desk_move_statement
-- an approval's move, only from the status the approval was decided on (committed with the
-- decision and its events: if the statement moved meanwhile, nothing is written)
UPDATE statements SET status = :to_status, updated_at = :at
WHERE statement_id = :statement_id AND status = :from_status;

-- name: compose_statements_without_claims
-- the shard's statements with no claim hash recorded yet (pipeline/stages/ingest.py)
SELECT s.statement_id FROM statements s
WHERE s.run_id = :run_id AND s.shard = :shard
  AND NOT EXISTS (SELECT 1 FROM statement_claims c WHERE c.statement_id = s.statement_id);

-- name: compose_insert_statement_claims
INSERT INTO statement_claims (claim_hash, statement_id) VALUES (:claim_hash, :statement_id)
ON CONFLICT (claim_hash, statement_id) DO NOTHING;
