-- Finance and deliverability facts (pipeline/report/facts.py, docs/finance.md): small tables
-- rebuilt per day from the ledger's events, so any past day can be recomputed and every figure
-- of a report traced back to the events behind it. A day's rebuild deletes that day's rows and
-- inserts them again in one transaction. Portable SQL.
--
-- report_rates and report_mail_providers are copies of the versioned tables under templates/
-- (rates.csv, mail_providers.csv), loaded again by every rebuild so the SQL can join them.

CREATE TABLE report_rates (
    rate         TEXT NOT NULL,
    unit         TEXT NOT NULL,
    valid_from   TEXT NOT NULL,
    valid_to     TEXT NOT NULL,
    unit_micros  BIGINT NOT NULL,
    PRIMARY KEY (rate, valid_from)
);

CREATE TABLE report_mail_providers (
    domain    TEXT PRIMARY KEY,
    provider  TEXT NOT NULL
);

-- Status moves of the day: statements at the end of a day in a status = moves into it up to
-- that day minus moves out of it (a statement's first event, composed, comes from '').
CREATE TABLE report_state_facts (
    day          TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    from_status  TEXT NOT NULL,
    to_status    TEXT NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (day, run_id, from_status, to_status)
);

-- Email outcomes of the day: accepted by the relay, bounced after acceptance, rejected while
-- sending, complaints; by pool, recipient provider and bounce category.
CREATE TABLE report_email_facts (
    day       TEXT NOT NULL,
    run_id    TEXT NOT NULL,
    pool      TEXT NOT NULL,
    provider  TEXT NOT NULL,
    outcome   TEXT NOT NULL CHECK (outcome IN ('accepted', 'bounced', 'rejected', 'complained')),
    category  TEXT NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (day, run_id, pool, provider, outcome, category)
);

-- Statements waiting in the retry, verification and paper queues at the end of the day, by how
-- many days they have waited since they entered the queue.
CREATE TABLE report_queue_facts (
    day         TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    queue       TEXT NOT NULL,
    age_bucket  TEXT NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (day, run_id, queue, age_bucket)
);

-- Print pieces of the day's batches (statements and prompt notices), sheets, mail and weight class.
CREATE TABLE report_paper_facts (
    day           TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    mail_class    TEXT NOT NULL,
    weight_class  TEXT NOT NULL,
    pieces        INTEGER NOT NULL,
    sheets        INTEGER NOT NULL,
    PRIMARY KEY (day, run_id, kind, mail_class, weight_class)
);

-- What the day's email messages and print pieces cost, each at the rate valid that day.
CREATE TABLE report_cost_facts (
    day            TEXT NOT NULL,
    run_id         TEXT NOT NULL,
    channel        TEXT NOT NULL,
    rate           TEXT NOT NULL,
    unit           TEXT NOT NULL,
    quantity       BIGINT NOT NULL,
    unit_micros    BIGINT NOT NULL,
    amount_micros  BIGINT NOT NULL,
    PRIMARY KEY (day, run_id, channel, rate)
);

-- Statements of a run not yet settled (delivered, on paper or closed) at the end of the day,
-- with the run's delivery deadline and the whole days left until it (negative: past).
CREATE TABLE report_deadline_facts (
    day          TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    deadline_at  TEXT NOT NULL,
    days_left    INTEGER NOT NULL,
    unsettled    INTEGER NOT NULL,
    PRIMARY KEY (day, run_id)
);

-- Each day's bounds for the snapshot facts (queue ageing), so one query covers many days: the
-- next day (its end), and the days 2, 7 and 14 before it (a queue entered on or after age_2 has
-- waited 0-2 days, on or after age_7 3-7 days, on or after age_14 8-14 days, before it 15+).
CREATE TABLE report_calendar (
    day      TEXT PRIMARY KEY,
    day_end  TEXT NOT NULL,
    age_2    TEXT NOT NULL,
    age_7    TEXT NOT NULL,
    age_14   TEXT NOT NULL
);

-- The days whose facts were built, and when.
CREATE TABLE report_fact_days (
    day       TEXT PRIMARY KEY,
    built_at  TEXT NOT NULL
);

-- A day's events and the statements that moved into a queue, without scanning the timeline.
CREATE INDEX statement_events_at ON statement_events (at);
CREATE INDEX statement_events_to_status ON statement_events (to_status, at);
