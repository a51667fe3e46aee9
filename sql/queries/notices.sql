-- Prompt notices: their lifecycle (pipeline/ledger/notices.py), the notices stage
-- (pipeline/stages/notices.py), what a statement says about them and the run report.
-- Claim ids only, never claim content.

-- name: notices_due
-- every notice still to send, with what the stage needs of its statement, and the latest later
-- version of that statement (same recipient and period), if compose has made one
SELECT p.statement_id, p.claim_id, p.notice_id, p.notice_due, p.attempts, s.run_id, s.period,
       s.shard, s.member_id, s.status AS statement_status, s.pool AS statement_pool,
       (SELECT t.statement_id FROM statements t
        WHERE t.period = s.period AND t.member_id = s.member_id AND t.version > s.version
        ORDER BY t.version DESC LIMIT 1) AS later_version
FROM prompt_notices p JOIN statements s ON s.statement_id = p.statement_id
WHERE p.status = 'due'
ORDER BY p.notice_due, p.statement_id, p.claim_id;

-- name: notices_open_of_superseded
-- notices that have not left (ledger/notices.py NOT_LEFT) of statements closed as superseded,
-- with the version that replaced the statement (none: a corrected extract withdrew it)
SELECT p.statement_id, p.claim_id, p.notice_id,
       (SELECT t.statement_id FROM statements t
        WHERE t.period = s.period AND t.member_id = s.member_id AND t.version > s.version
        ORDER BY t.version DESC LIMIT 1) AS later_version
FROM prompt_notices p JOIN statements s ON s.statement_id = p.statement_id
WHERE p.status IN ('due', 'paper_queued') AND s.status = 'superseded'
ORDER BY p.statement_id, p.claim_id;

-- name: notice_assign_id
UPDATE prompt_notices SET notice_id = :notice_id
WHERE statement_id = :statement_id AND claim_id = :claim_id AND notice_id IS NULL;

-- name: notice_current
SELECT notice_id, statement_id, claim_id, notice_due, status FROM prompt_notices
WHERE notice_id = :notice_id;

-- name: notice_move
UPDATE prompt_notices SET
    status = :to_status,
    updated_at = :at,
    left_on = COALESCE(:left_on, left_on),
    late = COALESCE(:late, late),
    pool = COALESCE(:pool, pool),
    object_key = COALESCE(:object_key, object_key),
    print_key = COALESCE(:print_key, print_key),
    last_reason = COALESCE(:last_reason, last_reason),
    attempts = attempts + :attempts_increment
WHERE notice_id = :notice_id AND status = :from_status;

-- name: notice_set_reason
UPDATE prompt_notices SET last_reason = :last_reason WHERE notice_id = :notice_id;

-- name: notice_attempt
-- the sender is about to hand the notice to a relay: a due notice with attempts and no outcome
-- after a crash may have been accepted (in doubt) and is sent again
UPDATE prompt_notices SET attempts = attempts + 1, pool = :pool
WHERE notice_id = :notice_id AND status = 'due';

-- name: notice_paper_candidates
-- on paper since before the day's cut-off (updated_at is the time of its last move), its
-- statement not closed as superseded (such a notice is closed with it: never printed from it)
SELECT p.notice_id, p.print_key, p.last_reason, s.run_id, s.period, s.shard, s.member_id
FROM prompt_notices p JOIN statements s ON s.statement_id = p.statement_id
WHERE p.status = 'paper_queued' AND p.updated_at <= :cutoff AND s.status <> 'superseded'
ORDER BY p.notice_id;

-- name: notices_in_shard
-- the notices a shard's statements say were sent, and when they leave: each statement's own, and
-- those of an earlier version of the same recipient and period that left or are leaving (compose
-- does not notice their claims again: compose_noticed_claims); a statement's own first
SELECT s.statement_id, p.claim_id, COALESCE(p.channel, t.channel) AS channel, p.statement_leaves,
       p.left_on, p.status
FROM statements s
JOIN statements t ON t.period = s.period AND t.member_id = s.member_id AND t.version <= s.version
JOIN prompt_notices p ON p.statement_id = t.statement_id
WHERE s.run_id = :run_id AND s.shard = :shard AND p.status <> 'superseded'
  AND (t.statement_id = s.statement_id
       OR p.status IN ('sent', 'paper_queued', 'batched', 'printed', 'mailed'))
ORDER BY s.statement_id, p.claim_id, t.version DESC;
