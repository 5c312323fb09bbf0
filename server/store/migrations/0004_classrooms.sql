-- 0004: classrooms. An instructor's classroom has a join code (short,
-- unambiguous capitals and digits, unique), the lessons or tracks it uses
-- (a JSON array of "track/slug" or "track"), an optional window (NULL for
-- open), and per-learner sandbox limits (0 for the server's default).
-- Members are the learners who joined. Times are UTC unix nanoseconds.

CREATE TABLE classrooms (
    id           TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
    name         TEXT    NOT NULL CHECK (name <> ''),
    code         TEXT    NOT NULL UNIQUE CHECK (code <> ''),
    instructor   TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    lessons      TEXT    NOT NULL DEFAULT '[]',
    starts_at    INTEGER,
    ends_at      INTEGER,
    cpu_millis   INTEGER NOT NULL DEFAULT 0 CHECK (cpu_millis >= 0),
    memory_mib   INTEGER NOT NULL DEFAULT 0 CHECK (memory_mib >= 0),
    created_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX classrooms_instructor ON classrooms (instructor);

CREATE TABLE classroom_members (
    classroom TEXT    NOT NULL REFERENCES classrooms (id) ON DELETE CASCADE,
    learner   TEXT    NOT NULL REFERENCES learners (id) ON DELETE CASCADE,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (classroom, learner)
) STRICT;
