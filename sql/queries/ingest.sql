-- Queries of the ingest and compose stages (names start with ingest_ or compose_).

-- name: compose_latest_versions
SELECT s.member_id, s.statement_id, s.version, s.content_hash, s.status, s.channel,
       s.address_hash
FROM statements s
WHERE s.period = :period AND s.shard = :shard
  AND s.version = (SELECT MAX(t.version) FROM statements t
                   WHERE t.period = s.period AND t.member_id = s.member_id);

-- name: compose_set_lineage
UPDATE statements SET content_hash = :content_hash, replaces = :replaces
WHERE statement_id = :statement_id AND content_hash IS NULL;

-- name: compose_set_address_hash
-- an email statement composed before addresses were kept: its address from now on
UPDATE statements SET address_hash = :address_hash
WHERE statement_id = :statement_id AND address_hash IS NULL AND channel = 'email';

-- name: compose_insert_prompt_notice
INSERT INTO prompt_notices (statement_id, claim_id, notice_due, channel, statement_leaves)
VALUES (:statement_id, :claim_id, :notice_due, :channel, :statement_leaves)
ON CONFLICT (statement_id, claim_id) DO NOTHING;

-- name: compose_noticed_claims
-- claims of the shard's recipients whose prompt notice, on any version of the period, left or is
-- leaving (sent, on paper, mailed; not one queued for paper from a statement closed as superseded,
-- which is closed with it): a new version does not notice them again
SELECT s.member_id, p.claim_id
FROM prompt_notices p JOIN statements s ON s.statement_id = p.statement_id
WHERE s.period = :period AND s.shard = :shard
  AND (p.status IN ('sent', 'batched', 'printed', 'mailed')
       OR (p.status = 'paper_queued' AND s.status <> 'superseded'));

-- name: compose_active_suppressions
SELECT address_hash FROM suppressions WHERE lifted_at IS NULL;

-- name: compose_versions_for_member
SELECT statement_id, version, replaces, status, content_hash, run_id
FROM statements WHERE period = :period AND member_id = :member_id ORDER BY version;

-- name: ingest_prompt_notices_for_run
-- each flagged claim, its statement's channel and status, and its notice: id, status, the day it
-- left (or leaves, on paper) and whether that was after it was due
SELECT p.statement_id, p.claim_id, p.notice_due, p.statement_leaves,
       COALESCE(p.channel, s.channel) AS channel, s.status,
       p.notice_id, p.status AS notice_status, p.left_on, p.late
FROM prompt_notices p JOIN statements s ON s.statement_id = p.statement_id
WHERE s.run_id = :run_id
ORDER BY p.notice_due, p.statement_id, p.claim_id;

-- name: superseded_unexplained_for_run
-- superseded versions neither replaced by a newer version nor withdrawn by a corrected extract
SELECT COUNT(*) AS n FROM statements s
WHERE s.run_id = :run_id AND s.status = 'superseded'
  AND NOT EXISTS (SELECT 1 FROM statements r WHERE r.replaces = s.statement_id)
  AND NOT EXISTS (SELECT 1 FROM statement_events e WHERE e.statement_id = s.statement_id
                  AND e.event IN ('withdrawn', 'withdrawn_in_doubt'));

-- The follow-up flag: a statement out (or possibly out) when a corrected extract withdrew it,
-- and not reinstated since. The same condition in the three queries below.

-- name: withdrawn_for_run
-- statements a corrected extract withdrew and that are still withdrawn (not reinstated, not
-- replaced by a newer version), once each: after release if it carries the follow-up flag
SELECT s.statement_id, s.status,
       CASE WHEN EXISTS (SELECT 1 FROM statement_events f WHERE f.statement_id = s.statement_id
                         AND f.event IN ('withdrawn_after_release', 'withdrawn_in_doubt')
                         AND NOT EXISTS (SELECT 1 FROM statement_events r
                                         WHERE r.statement_id = f.statement_id
                                         AND r.event = 'reinstated' AND r.event_id > f.event_id))
            THEN 'withdrawn_after_release' ELSE 'withdrawn' END AS event
FROM statements s
WHERE s.run_id = :run_id
  AND EXISTS (SELECT 1 FROM statement_events e WHERE e.statement_id = s.statement_id
              AND e.event IN ('withdrawn', 'withdrawn_after_release', 'withdrawn_in_doubt')
              AND NOT EXISTS (SELECT 1 FROM statement_events r WHERE r.statement_id = e.statement_id
                              AND r.event = 'reinstated' AND r.event_id > e.event_id))
  AND NOT EXISTS (SELECT 1 FROM statements n WHERE n.replaces = s.statement_id)
ORDER BY s.statement_id;

-- name: flagged_after_release
SELECT DISTINCT e.statement_id, s.period FROM statement_events e
JOIN statements s ON s.statement_id = e.statement_id
WHERE e.event IN ('withdrawn_after_release', 'withdrawn_in_doubt')
  AND NOT EXISTS (SELECT 1 FROM statement_events r WHERE r.statement_id = e.statement_id
                  AND r.event = 'reinstated' AND r.event_id > e.event_id);

-- name: statement_flagged_after_release
SELECT 1 AS flagged FROM statement_events e
WHERE e.statement_id = :statement_id AND e.event IN ('withdrawn_after_release', 'withdrawn_in_doubt')
  AND NOT EXISTS (SELECT 1 FROM statement_events r WHERE r.statement_id = e.statement_id
                  AND r.event = 'reinstated' AND r.event_id > e.event_id);

-- name: ingest_reissues_for_run
SELECT s.statement_id, s.member_id, s.version, s.replaces, r.status AS replaced_status
FROM statements s LEFT JOIN statements r ON r.statement_id = s.replaces
WHERE s.run_id = :run_id AND s.replaces IS NOT NULL ORDER BY s.statement_id;
