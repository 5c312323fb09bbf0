-- 0006: failed sign-ins per key ("user:NAME" or "addr:ADDRESS"), so that a
-- restart keeps lockouts and the failures that count towards one. Times
-- are UTC unix nanoseconds; failures is a space-separated list, oldest
-- first. A key with no recent failure and no lock has no row.

CREATE TABLE login_limits (
    key          TEXT PRIMARY KEY,
    failures     TEXT NOT NULL DEFAULT '',
    locked_until INTEGER NOT NULL DEFAULT 0
);
