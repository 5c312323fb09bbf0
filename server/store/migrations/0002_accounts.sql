-- 0002: accounts and their sessions. A user's id is also its learner id, so
-- progress, attempts and hints hang off the same key as an anonymous
-- learner's. A session row keeps only the SHA-256 of the cookie's token: a
-- copy of the database does not let anyone sign in. Times are UTC unix
-- nanoseconds, NULL for "never". An account from an OpenID Connect provider
-- has an external_id and an empty password hash: it cannot sign in locally.

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
    username      TEXT    NOT NULL UNIQUE CHECK (username <> ''),
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('learner', 'instructor', 'admin')),
    created_at    INTEGER NOT NULL,
    external_id   TEXT    UNIQUE CHECK (external_id <> '') -- issuer + subject for OIDC accounts, NULL for local ones
) STRICT;

CREATE TABLE sessions (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''), -- hex SHA-256 of the token
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE INDEX sessions_user ON sessions (user_id);
