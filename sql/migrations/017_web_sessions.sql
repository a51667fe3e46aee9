-- The support desk's sign-in sessions (`eob web`). The browser's cookie carries a signed random
-- session id; only its SHA-256 is stored, so a copy of this table cannot be replayed as a
-- cookie. A session ends when its user signs out, sits idle past EOB_WEB_IDLE_MINUTES or
-- reaches its maximum age: ended_at is set and the cookie is refused from then on, whatever
-- its signature says.
CREATE TABLE web_sessions (
    session_hash  TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    source        TEXT,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    ended_at      TEXT,
    ended_why     TEXT,
    flash         TEXT
);
CREATE INDEX web_sessions_last_seen ON web_sessions (last_seen_at);
CREATE INDEX web_sessions_username ON web_sessions (username);
