-- The support desk's accounts and member contacts, and the audit log's "from where" and "why".
--
-- audit_log.source (the client address, or the host of a command) and audit_log.reason (what the
-- user gave) join an entry's hash when set; rows written before stay NULL and verify as they were.
-- The UNIQUE index on prev_hash makes a fork of the chain impossible: each entry has at most one
-- successor, whatever a writer does.
ALTER TABLE audit_log ADD COLUMN source TEXT;
ALTER TABLE audit_log ADD COLUMN reason TEXT;
CREATE UNIQUE INDEX audit_log_prev_hash ON audit_log (prev_hash);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_statement ON audit_log (statement_id, seq);

-- Local accounts have an argon2id password hash; accounts of the identity provider (OIDC) may
-- have none. Consecutive failed sign-ins lock an account until locked_until.
-- An identity-provider account is the person the provider names by (oidc_issuer, oidc_subject):
-- the ID token's `sub` is unique and stable for its issuer, its preferred_username is neither.
-- An account an administrator made for the provider has oidc = 1 and no subject until its first
-- sign-in binds one; a local account (oidc = 0) never has one.
CREATE TABLE desk_users (
    username        TEXT PRIMARY KEY,
    display_name    TEXT NOT NULL,
    password_hash   TEXT,
    oidc            INTEGER NOT NULL DEFAULT 0 CHECK (oidc IN (0, 1)),
    oidc_issuer     TEXT,
    oidc_subject    TEXT,
    active          INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    failed_signins  INTEGER NOT NULL DEFAULT 0,
    locked_until    TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    last_signin_at  TEXT,
    CHECK (oidc = 1 OR (oidc_issuer IS NULL AND oidc_subject IS NULL)),
    CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL))
);
CREATE UNIQUE INDEX desk_users_oidc_subject ON desk_users (oidc_issuer, oidc_subject);

-- The closed set of roles, mirrored by pipeline.desk.permissions.Role.
CREATE TABLE desk_user_roles (
    username  TEXT NOT NULL REFERENCES desk_users (username),
    role      TEXT NOT NULL CHECK (role IN ('support_agent', 'supervisor', 'finance', 'auditor',
                                            'admin')),
    PRIMARY KEY (username, role)
);

-- A member contact (a call, a chat) an agent opened when a search found the member: looks at a
-- member's statements outside one are flagged by the access review. member_id is the
-- subscriber's (the part before "~" of a patient's own recipient id).
CREATE TABLE desk_contacts (
    contact_id  TEXT PRIMARY KEY,
    actor       TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    reference   TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    source      TEXT,
    opened_at   TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX desk_contacts_actor_member ON desk_contacts (actor, member_id, opened_at);
CREATE INDEX desk_contacts_opened ON desk_contacts (opened_at);
