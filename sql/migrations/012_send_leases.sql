-- Who is sending a pool's queue right now. Two send tasks for one IP pool (the monthly run's and
-- the reconcile DAG's, or a retry that starts while a killed try's lease is still held) would
-- read the same queued rows and email the same statement twice; the lease lets one at a time
-- send. A holder renews it while it sends; a lease not renewed by expires_at is free.
CREATE TABLE send_leases (
    pool         TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    acquired_at  TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
