-- The support desk's accounts and member contacts (pipeline/desk/accounts.py, contacts.py).

-- name: desk_user_get
SELECT username, display_name, password_hash, oidc, oidc_issuer, oidc_subject, active,
       failed_signins, locked_until, created_at, updated_at, last_signin_at
FROM desk_users WHERE username = :username;

-- name: desk_user_by_subject
-- the account the identity provider's (issuer, sub) is bound to
SELECT username, display_name, password_hash, oidc, oidc_issuer, oidc_subject, active,
       failed_signins, locked_until, created_at, updated_at, last_signin_at
FROM desk_users WHERE oidc_issuer = :issuer AND oidc_subject = :subject;

-- name: desk_users_list
SELECT username, display_name, password_hash, oidc, oidc_issuer, oidc_subject, active,
       failed_signins, locked_until, created_at, updated_at, last_signin_at
FROM desk_users ORDER BY username;

-- name: desk_user_roles
SELECT role FROM desk_user_roles WHERE username = :username ORDER BY role;

-- name: desk_all_user_roles
SELECT username, role FROM desk_user_roles ORDER BY username, role;

-- name: desk_user_insert
INSERT INTO desk_users (username, display_name, password_hash, oidc, active, failed_signins,
                        created_at, updated_at)
VALUES (:username, :display_name, :password_hash, :oidc, 1, 0, :at, :at)
ON CONFLICT (username) DO NOTHING;

-- name: desk_user_insert_oidc
-- an identity-provider user's first sign-in; nothing when the name or the subject is taken meanwhile
INSERT INTO desk_users (username, display_name, password_hash, oidc, oidc_issuer, oidc_subject,
                        active, failed_signins, created_at, updated_at)
VALUES (:username, :display_name, NULL, 1, :issuer, :subject, 1, 0, :at, :at)
ON CONFLICT DO NOTHING;

-- name: desk_user_bind_oidc
-- the first sign-in to an account an administrator made for the identity provider: only while it
-- is bound to no one (a local account, oidc = 0, is never taken over)
UPDATE desk_users SET oidc_issuer = :issuer, oidc_subject = :subject, updated_at = :at
WHERE username = :username AND oidc = 1 AND oidc_subject IS NULL;

-- name: desk_user_oidc_signed_in
-- an identity-provider sign-in: the name the token shows, and when (a password lockout is the
-- password's: the provider has its own)
UPDATE desk_users SET display_name = :display_name, last_signin_at = :at
WHERE oidc_issuer = :issuer AND oidc_subject = :subject;

-- name: desk_user_roles_clear
DELETE FROM desk_user_roles WHERE username = :username;

-- name: desk_user_role_add
INSERT INTO desk_user_roles (username, role) VALUES (:username, :role);

-- name: desk_user_set_password
-- a new password also clears a lockout and the failures that count toward one
UPDATE desk_users SET password_hash = :password_hash, failed_signins = 0, locked_until = NULL,
                      updated_at = :at
WHERE username = :username;

-- name: desk_user_rehash
-- the same password under the current hashing parameters (only if it was not changed meanwhile)
UPDATE desk_users SET password_hash = :password_hash
WHERE username = :username AND password_hash = :old_hash;

-- name: desk_user_set_active
UPDATE desk_users SET active = :active, updated_at = :at WHERE username = :username;

-- name: desk_user_unlock
UPDATE desk_users SET failed_signins = 0, locked_until = NULL, updated_at = :at
WHERE username = :username;

-- name: desk_user_signin_attempt
-- admit one password check, counted as a failure until it succeeds; refused (no row) while the
-- account is locked. The attempt that reaches the limit locks the account for the lockout and
-- starts the count again. One statement under the row lock: concurrent attempts are admitted
-- one after another, so no more than the limit are checked before the lock.
UPDATE desk_users SET
    failed_signins = CASE WHEN failed_signins + 1 >= :max_failures THEN 0
                          ELSE failed_signins + 1 END,
    locked_until = CASE WHEN failed_signins + 1 >= :max_failures THEN :until
                        ELSE locked_until END
WHERE username = :username AND (locked_until IS NULL OR locked_until <= :now)
RETURNING password_hash, active, locked_until;

-- name: desk_user_signed_in
-- a right password ends the count of failures, unless the account was locked meanwhile by other
-- attempts (a lock this attempt set itself, own_lock, it may end: it was the last one allowed)
UPDATE desk_users SET failed_signins = 0, locked_until = NULL, last_signin_at = :at
WHERE username = :username AND active = 1
  AND (locked_until IS NULL OR locked_until <= :at OR locked_until = :own_lock);

-- name: desk_contact_insert
INSERT INTO desk_contacts (contact_id, actor, member_id, reference, purpose, source, opened_at,
                           expires_at)
VALUES (:contact_id, :actor, :member_id, :reference, :purpose, :source, :opened_at, :expires_at);

-- name: desk_contact_windows
-- when each contact of an agent with a member opened and closed (the rule is
-- pipeline.desk.audit.within_contact)
SELECT opened_at, expires_at FROM desk_contacts
WHERE actor = :actor AND member_id = :member_id ORDER BY opened_at;
