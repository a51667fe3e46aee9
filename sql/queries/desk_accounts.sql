-- The support desk's accounts and member contacts (pipeline/desk/accounts.py, contacts.py).

-- name: desk_user_get
SELECT username, display_name, password_hash, oidc, active, failed_signins, locked_until,
       created_at, updated_at, last_signin_at
FROM desk_users WHERE username = :username;

-- name: desk_users_list
SELECT username, display_name, password_hash, oidc, active, failed_signins, locked_until,
       created_at, updated_at, last_signin_at
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

-- name: desk_user_upsert_oidc
-- an identity-provider sign-in: its name and the oidc mark; a local password stays as it was
INSERT INTO desk_users (username, display_name, password_hash, oidc, active, failed_signins,
                        created_at, updated_at)
VALUES (:username, :display_name, NULL, 1, 1, 0, :at, :at)
ON CONFLICT (username) DO UPDATE SET display_name = excluded.display_name, oidc = 1,
                                     updated_at = excluded.updated_at;

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

-- name: desk_user_signin_failed
-- one more failure in a row; the one that reaches the limit locks the account for the lockout
-- and starts the count again (one statement: concurrent attempts cannot both miss the limit)
UPDATE desk_users SET
    failed_signins = CASE WHEN failed_signins + 1 >= :max_failures THEN 0 ELSE failed_signins + 1 END,
    locked_until = CASE WHEN failed_signins + 1 >= :max_failures THEN :until ELSE locked_until END
WHERE username = :username;

-- name: desk_user_signed_in
UPDATE desk_users SET failed_signins = 0, locked_until = NULL, last_signin_at = :at
WHERE username = :username;

-- name: desk_contact_insert
INSERT INTO desk_contacts (contact_id, actor, member_id, reference, purpose, source, opened_at,
                           expires_at)
VALUES (:contact_id, :actor, :member_id, :reference, :purpose, :source, :opened_at, :expires_at);

-- name: desk_contact_open
SELECT contact_id FROM desk_contacts
WHERE actor = :actor AND member_id = :member_id AND opened_at <= :at AND expires_at > :at
ORDER BY opened_at DESC LIMIT 1;
