-- The audit log (pipeline/ledger/audit.py): an append-only hash chain; and what the support
-- desk's audit page and access review read from it (pipeline/desk/audit.py).

-- name: audit_lock_postgresql
-- held until the transaction ends: one writer at a time reads the head and appends after it
SELECT pg_advisory_xact_lock(7204114);

-- name: last_audit_hash
SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1;

-- name: insert_audit
INSERT INTO audit_log (at, actor, action, statement_id, detail, source, reason, prev_hash, hash)
VALUES (:at, :actor, :action, :statement_id, :detail, :source, :reason, :prev_hash, :hash);

-- name: audit_chain
SELECT seq, at, actor, action, statement_id, detail, source, reason, prev_hash, hash
FROM audit_log ORDER BY seq;

-- name: audit_seq_by_hash
SELECT seq FROM audit_log WHERE hash = :hash;

-- name: audit_hash_of_seq
SELECT hash FROM audit_log WHERE seq = :seq;

-- name: audit_seqs_by_prev_hash
SELECT seq FROM audit_log WHERE prev_hash = :prev_hash ORDER BY seq;

-- name: audit_seq_after
SELECT seq FROM audit_log WHERE seq > :seq ORDER BY seq LIMIT 1;

-- name: audit_entries
-- newest first; each filter applies only when given
SELECT seq, at, actor, action, statement_id, source, reason, detail, hash FROM audit_log
WHERE (CAST(:since AS TEXT) IS NULL OR at >= :since)
  AND (CAST(:actor AS TEXT) IS NULL OR actor = :actor)
  AND (CAST(:statement_id AS TEXT) IS NULL OR statement_id = :statement_id)
ORDER BY seq DESC LIMIT :limit;

-- name: audit_between
-- the entries of an access review's period [since, until)
SELECT seq, at, actor, action, statement_id, source, detail FROM audit_log
WHERE at >= :since AND at < :until ORDER BY seq;

-- name: audit_statement_members
-- whose statements an access review's looks were at (read with a list of ids)
SELECT statement_id, member_id FROM statements WHERE statement_id IN :ids;

-- name: audit_contacts_between
-- the member contacts open at some time in [since, until)
SELECT actor, member_id, opened_at, expires_at FROM desk_contacts
WHERE opened_at < :until AND expires_at > :since
ORDER BY actor, member_id, opened_at;
