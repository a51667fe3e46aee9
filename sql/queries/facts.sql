-- Finance and deliverability facts (pipeline/report/facts.py) and the figures read from them
-- (pipeline/report/figures.py). A day is [day, next day) of the events' ISO-8601 UTC text.
-- A rebuild covers the days first..last at once (one day: first = last; range_end is the day
-- after last); an event's day is the date part of its `at`. report_calendar holds each day's
-- bounds for the snapshot facts (queues).

-- name: facts_delete_rates
DELETE FROM report_rates;

-- name: facts_insert_rate
INSERT INTO report_rates (rate, unit, valid_from, valid_to, unit_micros)
VALUES (:rate, :unit, :valid_from, :valid_to, :unit_micros);

-- name: facts_delete_providers
DELETE FROM report_mail_providers;

-- name: facts_insert_provider
INSERT INTO report_mail_providers (domain, provider) VALUES (:domain, :provider);

-- name: facts_delete_state
DELETE FROM report_state_facts WHERE day >= :first AND day <= :last;

-- name: facts_delete_email
DELETE FROM report_email_facts WHERE day >= :first AND day <= :last;

-- name: facts_delete_queues
DELETE FROM report_queue_facts WHERE day >= :first AND day <= :last;

-- name: facts_delete_paper
DELETE FROM report_paper_facts WHERE day >= :first AND day <= :last;

-- name: facts_delete_cost
DELETE FROM report_cost_facts WHERE day >= :first AND day <= :last;

-- name: facts_delete_deadline
DELETE FROM report_deadline_facts WHERE day >= :first AND day <= :last;

-- name: facts_insert_calendar
-- A day's bounds (a day's bounds never change: an existing row is kept).
INSERT INTO report_calendar (day, day_end, age_2, age_7, age_14)
VALUES (:day, :day_end, :age_2, :age_7, :age_14)
ON CONFLICT (day) DO NOTHING;

-- name: facts_mark_day
INSERT INTO report_fact_days (day, built_at) VALUES (:day, :built_at)
ON CONFLICT (day) DO UPDATE SET built_at = excluded.built_at;

-- name: facts_insert_state
-- Every status move of each day (an ignored move has no to_status and is not one).
INSERT INTO report_state_facts (day, run_id, from_status, to_status, n)
SELECT m.day, m.run_id, m.from_status, m.to_status, COUNT(*)
FROM (SELECT substr(e.at, 1, 10) AS day, s.run_id, COALESCE(e.from_status, '') AS from_status, e.to_status
      FROM statement_events e JOIN statements s ON s.statement_id = e.statement_id
      WHERE e.at >= :first AND e.at < :range_end AND e.to_status IS NOT NULL) m
GROUP BY m.day, m.run_id, m.from_status, m.to_status;

-- name: facts_insert_email_sqlite
-- Messages the relay accepted (`sent`), bounces after acceptance, rejections while sending (a
-- bounce straight from `queued`) and complaints, by the statement's pool and recipient provider.
INSERT INTO report_email_facts (day, run_id, pool, provider, outcome, category, n)
SELECT m.day, m.run_id, m.pool, m.provider, m.outcome, m.category, COUNT(*)
FROM (SELECT substr(e.at, 1, 10) AS day, s.run_id, COALESCE(s.pool, '') AS pool,
             COALESCE(p.provider, 'other') AS provider,
             CASE WHEN e.event = 'sent' THEN 'accepted'
                  WHEN e.event = 'complaint_received' THEN 'complained'
                  WHEN e.from_status = 'queued' THEN 'rejected' ELSE 'bounced' END AS outcome,
             CASE WHEN e.event = 'bounced'
                  THEN COALESCE(json_extract(e.detail, '$.category'), 'unknown') ELSE '' END AS category
      FROM statement_events e JOIN statements s ON s.statement_id = e.statement_id
      LEFT JOIN report_mail_providers p ON p.domain = lower(s.email_domain)
      WHERE e.at >= :first AND e.at < :range_end
        AND e.event IN ('sent', 'bounced', 'complaint_received')) m
GROUP BY m.day, m.run_id, m.pool, m.provider, m.outcome, m.category;

-- name: facts_insert_email_postgresql
INSERT INTO report_email_facts (day, run_id, pool, provider, outcome, category, n)
SELECT m.day, m.run_id, m.pool, m.provider, m.outcome, m.category, COUNT(*)
FROM (SELECT substr(e.at, 1, 10) AS day, s.run_id, COALESCE(s.pool, '') AS pool,
             COALESCE(p.provider, 'other') AS provider,
             CASE WHEN e.event = 'sent' THEN 'accepted'
                  WHEN e.event = 'complaint_received' THEN 'complained'
                  WHEN e.from_status = 'queued' THEN 'rejected' ELSE 'bounced' END AS outcome,
             CASE WHEN e.event = 'bounced'
                  THEN COALESCE(CAST(e.detail AS json) ->> 'category', 'unknown') ELSE '' END AS category
      FROM statement_events e JOIN statements s ON s.statement_id = e.statement_id
      LEFT JOIN report_mail_providers p ON p.domain = lower(s.email_domain)
      WHERE e.at >= :first AND e.at < :range_end
        AND e.event IN ('sent', 'bounced', 'complaint_received')) m
GROUP BY m.day, m.run_id, m.pool, m.provider, m.outcome, m.category;

-- name: facts_insert_queues
-- Statements whose last status move by the end of a day put them in a queue, by the days they
-- have waited since (age_2, age_7, age_14: see report_calendar). A move of a statement that ever
-- entered a queue is its last one from its own day until the end of the day of its next move
-- (next_at: the earliest `at` of its later moves), so the whole range is one pass over those
-- statements' moves (counted by run and time first), not one scan of the timeline per day.
INSERT INTO report_queue_facts (day, run_id, queue, age_bucket, n)
SELECT q.day, q.run_id, q.queue, q.age_bucket, SUM(q.n)
FROM (SELECT c.day, m.run_id,
             CASE m.to_status WHEN 'retry_scheduled' THEN 'retry'
                              WHEN 'verification_pending' THEN 'verification' ELSE 'paper' END AS queue,
             CASE WHEN m.at >= c.age_2 THEN '0-2' WHEN m.at >= c.age_7 THEN '3-7'
                  WHEN m.at >= c.age_14 THEN '8-14' ELSE '15+' END AS age_bucket,
             m.n
      FROM (SELECT s.run_id, e.to_status, e.at, e.next_at, COUNT(*) AS n
            FROM (SELECT e.statement_id, e.to_status, e.at,
                         MIN(e.at) OVER (PARTITION BY e.statement_id ORDER BY e.event_id
                                         ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS next_at
                  FROM statement_events e
                  WHERE e.to_status IS NOT NULL
                    AND e.statement_id IN (SELECT w.statement_id FROM statement_events w
                                           WHERE w.to_status IN ('retry_scheduled', 'verification_pending',
                                                                 'paper_queued')
                                             AND w.at < :range_end)) e
            JOIN statements s ON s.statement_id = e.statement_id
            WHERE e.to_status IN ('retry_scheduled', 'verification_pending', 'paper_queued')
            GROUP BY s.run_id, e.to_status, e.at, e.next_at) m
      JOIN report_calendar c ON c.day >= :first AND c.day <= :last
                            AND m.at < c.day_end AND (m.next_at IS NULL OR m.next_at >= c.day_end)) q
GROUP BY q.day, q.run_id, q.queue, q.age_bucket;

-- name: facts_insert_paper
-- The live pieces of the days' print batches (a cancelled batch or a rejected piece is not
-- printed). Weight class by sheets in a #10 envelope: up to 4 sheets 1 oz, 10 sheets 2 oz,
-- 16 sheets 3 oz, more is a flat.
INSERT INTO report_paper_facts (day, run_id, kind, mail_class, weight_class, pieces, sheets)
SELECT x.day, x.run_id, x.kind, x.mail_class, x.weight_class, COUNT(*), SUM(x.sheets)
FROM (SELECT b.batch_day AS day, COALESCE(s.run_id, ns.run_id, '') AS run_id,
             CASE WHEN s.statement_id IS NULL THEN 'notice' ELSE 'statement' END AS kind,
             p.mail_class, p.sheets,
             CASE WHEN p.sheets <= 4 THEN '1oz' WHEN p.sheets <= 10 THEN '2oz'
                  WHEN p.sheets <= 16 THEN '3oz' ELSE 'flat' END AS weight_class
      FROM print_batches b JOIN batch_pieces p ON p.batch_name = b.batch_name
      LEFT JOIN statements s ON s.statement_id = p.statement_id
      LEFT JOIN prompt_notices n ON n.notice_id = p.statement_id
      LEFT JOIN statements ns ON ns.statement_id = n.statement_id
      WHERE b.batch_day >= :first AND b.batch_day <= :last AND b.state <> 'cancelled' AND p.live = 1) x
GROUP BY x.day, x.run_id, x.kind, x.mail_class, x.weight_class;

-- name: facts_insert_email_cost
-- Each message the relay accepted, at the email rate valid on its day.
INSERT INTO report_cost_facts (day, run_id, channel, rate, unit, quantity, unit_micros, amount_micros)
SELECT f.day, f.run_id, 'email', r.rate, r.unit, SUM(f.n), r.unit_micros, SUM(f.n) * r.unit_micros
FROM report_email_facts f
JOIN report_rates r ON r.rate = 'email' AND r.valid_from <= f.day AND f.day < r.valid_to
WHERE f.day >= :first AND f.day <= :last AND f.outcome = 'accepted'
GROUP BY f.day, f.run_id, r.rate, r.unit, r.unit_micros;

-- name: facts_insert_paper_cost
-- Each sheet printed, and each piece's envelope, vendor handling and postage (by mail and
-- weight class), at the rates valid on the batch's day.
INSERT INTO report_cost_facts (day, run_id, channel, rate, unit, quantity, unit_micros, amount_micros)
SELECT q.day, q.run_id, 'paper', r.rate, r.unit, SUM(q.quantity), r.unit_micros,
       SUM(q.quantity) * r.unit_micros
FROM (SELECT day, run_id, 'print' AS rate, sheets AS quantity FROM report_paper_facts
      WHERE day >= :first AND day <= :last
      UNION ALL
      SELECT day, run_id, 'envelope' AS rate, pieces AS quantity FROM report_paper_facts
      WHERE day >= :first AND day <= :last
      UNION ALL
      SELECT day, run_id, 'vendor_handling' AS rate, pieces AS quantity FROM report_paper_facts
      WHERE day >= :first AND day <= :last
      UNION ALL
      SELECT day, run_id, 'postage:' || mail_class || ':' || weight_class AS rate, pieces AS quantity
      FROM report_paper_facts WHERE day >= :first AND day <= :last) q
JOIN report_rates r ON r.rate = q.rate AND r.valid_from <= q.day AND q.day < r.valid_to
GROUP BY q.day, q.run_id, r.rate, r.unit, r.unit_micros;

-- name: facts_runs_started
SELECT run_id, period, started_at FROM runs WHERE started_at < :day_end ORDER BY run_id;

-- name: facts_insert_deadline
-- A run's statements not settled at the end of the day (the delivery-deadline sweeper's set:
-- not delivered, on paper or closed), from the status moves up to that day (every rebuild starts
-- at the first day of the runs active in it, facts_first_day_of_active_runs, so they are all there).
INSERT INTO report_deadline_facts (day, run_id, deadline_at, days_left, unsettled)
SELECT :day, :run_id, :deadline_at, :days_left, x.unsettled
FROM (SELECT SUM(CASE WHEN to_status NOT IN ('delivered', 'paper_queued', 'paper_exception', 'batched',
                                               'printed', 'mailed', 'failed', 'superseded')
                      THEN n ELSE 0 END)
             - SUM(CASE WHEN from_status NOT IN ('', 'delivered', 'paper_queued', 'paper_exception',
                                                   'batched', 'printed', 'mailed', 'failed', 'superseded')
                        THEN n ELSE 0 END) AS unsettled
      FROM report_state_facts WHERE run_id = :run_id AND day <= :day) x
WHERE x.unsettled > 0;

-- name: facts_first_day_of_active_runs
-- The first day of every run active in the days first..last (a run started by their end that
-- moved a statement on or after the first, or still has a statement not settled): a day's
-- statuses and deadline facts sum its runs' moves from their first day, so a rebuild of some
-- days starts there.
SELECT MIN(substr(r.started_at, 1, 10)) AS first_day FROM runs r
WHERE r.started_at < :range_end
  AND (r.run_id IN (SELECT s.run_id FROM statement_events e JOIN statements s ON s.statement_id = e.statement_id
                    WHERE e.at >= :first AND e.to_status IS NOT NULL)
       OR r.run_id IN (SELECT s.run_id FROM statements s
                       WHERE s.status NOT IN ('delivered', 'batched', 'printed', 'mailed', 'failed',
                                              'superseded')));

-- name: facts_rows_for_day
-- Every fact row of a day, in a fixed order (tests: a rebuild gives the same rows).
SELECT 'state' AS t, run_id, from_status AS a, to_status AS b, '' AS c, n AS v, 0 AS w FROM report_state_facts WHERE day = :day
UNION ALL SELECT 'email', run_id, pool, provider, outcome || '/' || category, n, 0 FROM report_email_facts WHERE day = :day
UNION ALL SELECT 'queue', run_id, queue, age_bucket, '', n, 0 FROM report_queue_facts WHERE day = :day
UNION ALL SELECT 'paper', run_id, kind, mail_class, weight_class, pieces, sheets FROM report_paper_facts WHERE day = :day
UNION ALL SELECT 'cost', run_id, channel, rate, unit, quantity, amount_micros FROM report_cost_facts WHERE day = :day
UNION ALL SELECT 'deadline', run_id, deadline_at, '', '', days_left, unsettled FROM report_deadline_facts WHERE day = :day
ORDER BY 1, 2, 3, 4, 5, 6, 7;

-- name: facts_run_span
-- The first and last day a run's statements moved (the days a period's report covers).
SELECT MIN(substr(e.at, 1, 10)) AS first_day, MAX(substr(e.at, 1, 10)) AS last_day
FROM statement_events e JOIN statements s ON s.statement_id = e.statement_id
WHERE s.run_id = :run_id;

-- name: figures_runs_in_scope
-- The runs a report covers: one run, or every run whose statements moved in the days.
SELECT DISTINCT f.run_id FROM report_state_facts f
WHERE (:run_id = '' OR f.run_id = :run_id) AND f.day >= :first AND f.day <= :last
ORDER BY f.run_id;

-- name: figures_state
SELECT f.run_id, f.from_status, f.to_status, SUM(f.n) AS n FROM report_state_facts f
WHERE (:run_id = '' OR f.run_id = :run_id) AND f.day <= :last
GROUP BY f.run_id, f.from_status, f.to_status;

-- name: figures_email
SELECT f.day, f.pool, f.provider, f.outcome, f.category, SUM(f.n) AS n FROM report_email_facts f
WHERE (:run_id = '' OR f.run_id = :run_id) AND f.day >= :first AND f.day <= :last
GROUP BY f.day, f.pool, f.provider, f.outcome, f.category
ORDER BY f.day, f.pool, f.provider, f.outcome, f.category;

-- name: figures_queues
SELECT f.run_id, f.queue, f.age_bucket, SUM(f.n) AS n FROM report_queue_facts f
WHERE (:run_id = '' OR f.run_id = :run_id) AND f.day = :day
GROUP BY f.run_id, f.queue, f.age_bucket;

-- name: figures_paper
SELECT f.kind, f.mail_class, f.weight_class, SUM(f.pieces) AS pieces, SUM(f.sheets) AS sheets
FROM report_paper_facts f
WHERE (:run_id = '' OR f.run_id = :run_id) AND f.day >= :first AND f.day <= :last
GROUP BY f.kind, f.mail_class, f.weight_class
ORDER BY f.kind, f.mail_class, f.weight_class;

-- name: figures_cost
SELECT f.channel, f.rate, f.unit, f.unit_micros, SUM(f.quantity) AS quantity,
       SUM(f.amount_micros) AS amount_micros, MIN(f.day) AS first_day, MAX(f.day) AS last_day
FROM report_cost_facts f
WHERE (:run_id = '' OR f.run_id = :run_id) AND f.day >= :first AND f.day <= :last
GROUP BY f.channel, f.rate, f.unit, f.unit_micros
ORDER BY f.channel, f.rate, MIN(f.day);

-- name: figures_deadline
SELECT f.run_id, f.deadline_at, f.days_left, f.unsettled FROM report_deadline_facts f
WHERE (:run_id = '' OR f.run_id = :run_id) AND f.day = :day
ORDER BY f.run_id;

-- name: figures_last_built_day
SELECT MAX(day) AS day FROM report_fact_days WHERE day <= :last;

-- name: figures_ledger_statements
-- The ledger's own counts, for the checks: statements per run, and those in each queue now.
SELECT run_id, status, COUNT(*) AS n FROM statements
WHERE (:run_id = '' OR run_id = :run_id)
GROUP BY run_id, status;

-- name: figures_moves_since
SELECT COUNT(*) AS n FROM statement_events WHERE at >= :since AND to_status IS NOT NULL;
