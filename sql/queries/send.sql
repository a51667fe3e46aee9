-- Queries of the send stage and the operator's send controls (pauses, warm-up, throttling).

-- name: send_queued_for_pool
SELECT statement_id, run_id, member_id, period, object_key, email_domain, attempts
FROM statements
WHERE status = 'queued' AND pool = :pool
ORDER BY statement_id;

-- name: send_queued_counts_for_pool
SELECT COALESCE(email_domain, '') AS email_domain, COUNT(*) AS n
FROM statements
WHERE status = 'queued' AND pool = :pool
GROUP BY COALESCE(email_domain, '');

-- name: send_in_doubt_for_pool
-- the statement's own last event (a prompt notice's events share its timeline)
SELECT s.statement_id
FROM statements s
JOIN statement_events e ON e.statement_id = s.statement_id
WHERE s.status = 'queued' AND s.pool = :pool AND e.event = 'send_attempt'
  AND e.event_id = (SELECT MAX(e2.event_id) FROM statement_events e2
                    WHERE e2.statement_id = s.statement_id AND e2.event NOT LIKE 'notice%')
ORDER BY s.statement_id;

-- name: send_statement_now
-- The statement the sender is about to build, as it is now (one per message: no id list).
SELECT status, pool, channel FROM statements
WHERE statement_id = :statement_id;

-- name: send_statements_by_id
-- The statements an operator's resend names, as they are now (ids: an expanding list).
SELECT statement_id, status, pool, channel FROM statements
WHERE statement_id IN :ids;

-- name: pool_insert_pause
INSERT INTO send_pauses (pause_id, pool, provider, kind, reason, actor, created_at, ends_at)
VALUES (:pause_id, :pool, :provider, :kind, :reason, :actor, :created_at, :ends_at);

-- name: pool_active_pauses
SELECT pause_id, pool, provider, kind, reason, actor, created_at, ends_at
FROM send_pauses
WHERE pool = :pool AND lifted_at IS NULL AND (ends_at IS NULL OR ends_at > :now)
ORDER BY created_at, pause_id;

-- name: pool_all_active_pauses
SELECT pause_id, pool, provider, kind, reason, actor, created_at, ends_at
FROM send_pauses
WHERE lifted_at IS NULL AND (ends_at IS NULL OR ends_at > :now)
ORDER BY pool, provider, created_at;

-- name: pool_lift_pauses
UPDATE send_pauses
SET lifted_at = :now, lifted_by = :actor, lifted_reason = :reason
WHERE pool = :pool AND provider = :provider AND lifted_at IS NULL
  AND (ends_at IS NULL OR ends_at > :now);

-- name: pool_add_usage
INSERT INTO pool_usage (pool, usage_day, usage_hour, messages)
VALUES (:pool, :usage_day, :usage_hour, :messages)
ON CONFLICT (pool, usage_day, usage_hour)
DO UPDATE SET messages = pool_usage.messages + excluded.messages;

-- name: pool_usage_today
SELECT COALESCE(SUM(messages), 0) AS day_total,
       COALESCE(SUM(CASE WHEN usage_hour = :usage_hour THEN messages ELSE 0 END), 0) AS hour_total
FROM pool_usage
WHERE pool = :pool AND usage_day = :usage_day;

-- name: pool_sending_days_before
SELECT COUNT(*) AS n FROM (
    SELECT usage_day FROM pool_usage
    WHERE pool = :pool AND usage_day < :usage_day
    GROUP BY usage_day
    HAVING SUM(messages) >= :min_messages
) AS days;

-- name: pool_throttle_state
SELECT provider, rate, decreased_at FROM send_throttle WHERE pool = :pool;

-- name: pool_save_throttle
INSERT INTO send_throttle (pool, provider, rate, decreased_at)
VALUES (:pool, :provider, :rate, :decreased_at)
ON CONFLICT (pool, provider)
DO UPDATE SET rate = excluded.rate, decreased_at = excluded.decreased_at;

-- name: pool_clear_throttle
DELETE FROM send_throttle WHERE pool = :pool AND provider = :provider;

-- name: send_lease_take
-- Take the pool's lease when it is free, expired, or already ours; 0 rows: another holds it.
INSERT INTO send_leases (pool, holder, acquired_at, expires_at)
VALUES (:pool, :holder, :now, :expires_at)
ON CONFLICT (pool) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at,
                                 expires_at = excluded.expires_at
WHERE send_leases.expires_at <= excluded.acquired_at OR send_leases.holder = excluded.holder;

-- name: send_lease_steal
-- Take over a lease whose holder is known to be gone (its process has exited on this host).
UPDATE send_leases SET holder = :holder, acquired_at = :now, expires_at = :expires_at
WHERE pool = :pool AND holder = :previous;

-- name: send_lease_renew
UPDATE send_leases SET expires_at = :expires_at WHERE pool = :pool AND holder = :holder;

-- name: send_lease_release
DELETE FROM send_leases WHERE pool = :pool AND holder = :holder;

-- name: send_lease_get
SELECT pool, holder, acquired_at, expires_at FROM send_leases WHERE pool = :pool;

-- name: send_run_awaiting_route
-- A run's email statements not yet routed to a pool (composed, or rendered and not queued).
SELECT COUNT(*) AS n FROM statements
WHERE run_id = :run_id AND channel = 'email' AND status IN ('composed', 'rendered');

-- name: send_queued_counts_total
SELECT COUNT(*) AS n FROM statements WHERE status = 'queued' AND pool = :pool;
