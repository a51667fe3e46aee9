-- The address an email statement goes to, as a keyed hash (the same HMAC as suppressions and
-- verification events; never the address). Compose records it with each email statement, so a
-- corrected member file can be compared with what the ledger has: a changed address or
-- channel is recorded on the timeline (`address_changed`, `channel_changed`). NULL for paper
-- statements and for statements composed before this column existed. Portable SQL.

ALTER TABLE statements ADD COLUMN address_hash TEXT;
