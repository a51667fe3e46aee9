-- name: insert_run
INSERT INTO runs (run_id, period, started_at, state, source, shards)
VALUES (:run_id, :period, :started_at, 'running', :source, :shards)
ON CONFLICT (run_id) DO NOTHING;

-- name: get_run
SELECT run_id, period, started_at, finished_at, state, source, shards FROM runs WHERE run_id = :run_id;

-- name: finish_run
-- the monthly run's last task: every other task of the run has finished
UPDATE runs SET state = :state, finished_at = :at WHERE run_id = :run_id;

-- name: latest_run
SELECT run_id, period, started_at, finished_at, state, source, shards
FROM runs ORDER BY started_at DESC LIMIT 1;

-- name: delete_ingest_files
DELETE FROM ingest_files WHERE run_id = :run_id;

-- name: delete_quarantine
DELETE FROM quarantine WHERE run_id = :run_id;

-- name: insert_ingest_file
INSERT INTO ingest_files (run_id, source_file, kind, rows_read, rows_accepted, rows_quarantined)
VALUES (:run_id, :source_file, :kind, :rows_read, :rows_accepted, :rows_quarantined);

-- name: insert_quarantine
INSERT INTO quarantine (run_id, source_file, row_number, field, reason)
VALUES (:run_id, :source_file, :row_number, :field, :reason);

-- name: ingest_files_for_run
SELECT source_file, kind, rows_read, rows_accepted, rows_quarantined
FROM ingest_files WHERE run_id = :run_id ORDER BY source_file;

-- name: ingest_begin
UPDATE runs SET ingest_state = 'running', ingest_at = :at, ingest_error = NULL WHERE run_id = :run_id;

-- name: ingest_succeeded
UPDATE runs SET ingest_state = 'succeeded', ingest_at = :at, ingest_error = NULL WHERE run_id = :run_id;

-- name: ingest_failed
UPDATE runs SET ingest_state = 'failed', ingest_at = :at, ingest_error = :error WHERE run_id = :run_id;

-- name: ingest_state_for_run
SELECT ingest_state, ingest_at, ingest_error FROM runs WHERE run_id = :run_id;

-- name: statement_id_scheme_for_run
SELECT statement_id_scheme FROM runs WHERE run_id = :run_id;

-- name: quarantine_reasons_for_run
SELECT source_file, field, reason, COUNT(*) AS row_count
FROM quarantine WHERE run_id = :run_id
GROUP BY source_file, field, reason ORDER BY row_count DESC, source_file, field;

-- name: insert_statement
INSERT INTO statements (
    statement_id, run_id, period, member_id, version, shard, status, channel, paper_reason,
    email_domain, address_hash, line_count, prompt_notice, created_at, updated_at)
VALUES (
    :statement_id, :run_id, :period, :member_id, :version, :shard, 'composed', :channel,
    :paper_reason, :email_domain, :address_hash, :line_count, :prompt_notice, :at, :at)
ON CONFLICT (statement_id) DO NOTHING;

-- name: insert_event
INSERT INTO statement_events (statement_id, at, event, from_status, to_status, detail)
VALUES (:statement_id, :at, :event, :from_status, :to_status, :detail);

-- name: get_statement
SELECT * FROM statements WHERE statement_id = :statement_id;

-- name: timeline
SELECT event_id, at, event, from_status, to_status, detail
FROM statement_events WHERE statement_id = :statement_id ORDER BY event_id;

-- name: statement_ids_in_shard
SELECT statement_id, status, sha256, channel FROM statements
WHERE run_id = :run_id AND shard = :shard ORDER BY statement_id;

-- name: queued_for_pool
SELECT statement_id, object_key, email_domain, attempts FROM statements
WHERE status = 'queued' AND pool = :pool ORDER BY statement_id;

-- name: rendered_for_run
SELECT statement_id, channel, email_domain FROM statements
WHERE run_id = :run_id AND status = 'rendered' ORDER BY statement_id;

-- name: status_counts_for_run
SELECT status, COUNT(*) AS n FROM statements WHERE run_id = :run_id GROUP BY status;

-- name: channel_counts_for_run
SELECT channel, COALESCE(paper_reason, '') AS paper_reason, COUNT(*) AS n
FROM statements WHERE run_id = :run_id GROUP BY channel, COALESCE(paper_reason, '');

-- name: event_counts_for_run
SELECT e.event, COUNT(DISTINCT e.statement_id) AS n
FROM statement_events e JOIN statements s ON s.statement_id = e.statement_id
WHERE s.run_id = :run_id GROUP BY e.event;

-- name: bounce_categories_for_run
SELECT bounce_category, status, COUNT(*) AS n FROM statements
WHERE run_id = :run_id AND bounce_category IS NOT NULL
GROUP BY bounce_category, status ORDER BY n DESC;

-- name: pool_counts_for_run
SELECT pool, status, COUNT(*) AS n FROM statements
WHERE run_id = :run_id AND pool IS NOT NULL GROUP BY pool, status ORDER BY pool, status;

-- name: prompt_notice_count_for_run
SELECT COUNT(*) AS n FROM statements WHERE run_id = :run_id AND prompt_notice = 1;

-- name: accumulator_overrun_flags
-- compose's flags of statements whose year-to-date accumulators are above their plan limits (a
-- data problem for the claims system): one audit row per compose, statement ids only; the report
-- keeps the rows of its run (detail.run_id)
SELECT detail FROM audit_log WHERE action = 'accumulator_overrun' ORDER BY seq;

-- name: held_statements_for_run
-- statements render refused because compose held them (pipeline.render.StatementHeld), with
-- their status now
SELECT s.statement_id, s.status FROM statements s
WHERE s.run_id = :run_id
  AND EXISTS (SELECT 1 FROM statement_events e WHERE e.statement_id = s.statement_id
              AND e.event = 'render_failed' AND e.detail LIKE '%"StatementHeld"%')
ORDER BY s.statement_id;

-- name: own_statements_for_run
-- Patients with a statement of their own (confidential communications) in the run: a recipient id
-- is <member>~<patient>; a reissue is the same patient.
SELECT COUNT(DISTINCT member_id) AS n FROM statements
WHERE run_id = :run_id AND member_id LIKE '%~%' AND status <> 'superseded';

-- name: bounce_message_seen
SELECT outcome FROM bounce_messages WHERE message_key = :message_key;

-- name: insert_bounce_message
INSERT INTO bounce_messages (message_key, received_at, kind, outcome, statement_id, reason)
VALUES (:message_key, :received_at, :kind, :outcome, :statement_id, :reason)
ON CONFLICT (message_key) DO NOTHING;

-- name: bounce_message_outcomes
SELECT outcome, COUNT(*) AS n FROM bounce_messages GROUP BY outcome;

-- name: insert_suppression
INSERT INTO suppressions (address_hash, cause, statement_id, created_at)
VALUES (:address_hash, :cause, :statement_id, :at)
ON CONFLICT (address_hash) DO NOTHING;

-- name: active_suppression
SELECT cause, statement_id, created_at FROM suppressions
WHERE address_hash = :address_hash AND lifted_at IS NULL;

-- name: current_status
SELECT status FROM statements WHERE statement_id = :statement_id;

-- name: apply_transition
UPDATE statements SET
    status = :to_status,
    updated_at = :at,
    pool = COALESCE(:pool, pool),
    object_key = COALESCE(:object_key, object_key),
    print_key = COALESCE(:print_key, print_key),
    sha256 = COALESCE(:sha256, sha256),
    pages = COALESCE(:pages, pages),
    size_bytes = COALESCE(:size_bytes, size_bytes),
    channel = COALESCE(:channel, channel),
    paper_reason = COALESCE(:paper_reason, paper_reason),
    bounce_category = COALESCE(:bounce_category, bounce_category),
    last_reason = COALESCE(:last_reason, last_reason),
    next_attempt_at = COALESCE(:next_attempt_at, next_attempt_at),
    attempts = attempts + :attempts_increment
WHERE statement_id = :statement_id AND status = :from_status;

-- name: move_from_expected_postgresql
-- One transition from the status the caller expects, and its event, as one statement (so, in
-- autocommit, one round trip): nothing is written unless the statement was in :from_status.
WITH moved AS (
    UPDATE statements SET
        status = :to_status,
        updated_at = :at,
        pool = COALESCE(:pool, pool),
        object_key = COALESCE(:object_key, object_key),
        print_key = COALESCE(:print_key, print_key),
        sha256 = COALESCE(:sha256, sha256),
        pages = COALESCE(:pages, pages),
        size_bytes = COALESCE(:size_bytes, size_bytes),
        channel = COALESCE(:channel, channel),
        paper_reason = COALESCE(:paper_reason, paper_reason),
        bounce_category = COALESCE(:bounce_category, bounce_category),
        last_reason = COALESCE(:last_reason, last_reason),
        next_attempt_at = COALESCE(:next_attempt_at, next_attempt_at),
        attempts = attempts + :attempts_increment
    WHERE statement_id = :statement_id AND status = :from_status
    RETURNING statement_id
)
INSERT INTO statement_events (statement_id, at, event, from_status, to_status, detail)
SELECT statement_id, :at, :event, :from_status, :to_status, :detail FROM moved;

-- name: set_statement_delivery
-- how a statement not yet out reaches the member, as compose decided from a corrected member
-- file: every field is set as given (a paper statement has no address); updated_at, which the
-- deadline sweeper reads as the last status change, moves only with the status
UPDATE statements SET
    status = :to_status,
    channel = :channel,
    paper_reason = :paper_reason,
    email_domain = :email_domain,
    address_hash = :address_hash,
    updated_at = COALESCE(:moved_at, updated_at)
WHERE statement_id = :statement_id AND status = :from_status;

-- name: current_statuses
SELECT statement_id, status FROM statements WHERE statement_id IN :ids;
