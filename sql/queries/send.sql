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
SELECT s.statement_id
FROM statements s
JOIN statement_events e ON e.statement_id = s.statement_id
WHERE s.status = 'queued' AND s.pool = :pool AND e.event = 'send_attempt'
  AND e.event_id = (SELECT MAX(e2.event_id) FROM statement_events e2
                    WHERE e2.statement_id = s.statement_id)
ORDER BY s.statement_id;

-- name: send_statements_by_id
SELECT statement_id, status, pool, channel, email_domain FROM statements
WHERE statement_id = :statement_id;

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
