-- Queries of the support desk's web app (pipeline/web): its sign-in sessions.

-- name: web_session_insert
INSERT INTO web_sessions (session_hash, username, source, created_at, last_seen_at)
VALUES (:session_hash, :username, :source, :at, :at);

-- name: web_session_get
SELECT session_hash, username, source, created_at, last_seen_at, ended_at, ended_why, flash
FROM web_sessions WHERE session_hash = :session_hash;

-- name: web_session_touch
UPDATE web_sessions SET last_seen_at = :at
WHERE session_hash = :session_hash AND ended_at IS NULL;

-- name: web_session_end
UPDATE web_sessions SET ended_at = :at, ended_why = :why, flash = NULL
WHERE session_hash = :session_hash AND ended_at IS NULL;

-- name: web_sessions_end_for_user
-- every live session of one user but the one kept (keep = '' for none): their password was reset, their roles
-- changed, or the account was disabled, so a session begun before that (or a cookie copied from
-- it) ends with it
UPDATE web_sessions SET ended_at = :at, ended_why = :why, flash = NULL
WHERE username = :username AND ended_at IS NULL AND session_hash <> :keep;

-- name: web_session_flash
-- a one-line message shown on the next page the user sees (NULL clears it)
UPDATE web_sessions SET flash = :flash WHERE session_hash = :session_hash AND ended_at IS NULL;

-- name: web_sessions_purge
-- rows of sessions long over: kept for a while so an old cookie is told why it was refused
DELETE FROM web_sessions WHERE last_seen_at < :before;
