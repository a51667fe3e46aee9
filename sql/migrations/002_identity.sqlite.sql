-- SQLite: INTEGER PRIMARY KEY is an alias of the rowid and is assigned automatically.
SELECT 1;
