-- For each prompt-notice claim, the channel its statement was composed for and the day that
-- statement leaves on it (by email the run's day; on paper the vendor's mail date): with
-- notice_due, how many days late the statement reaches the member. Empty for rows flagged before
-- they were kept.
ALTER TABLE prompt_notices ADD COLUMN channel TEXT;
ALTER TABLE prompt_notices ADD COLUMN statement_leaves TEXT;
