-- 0001: learners, their progress, their check attempts and hints, and the
-- sandboxes the Manager created. Times are UTC unix nanoseconds (INTEGER);
-- NULL means "never". Tables are STRICT so a wrongly typed write fails loudly.

CREATE TABLE learners (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
) STRICT;

CREATE TABLE step_progress (
    learner     TEXT    NOT NULL REFERENCES learners (id) ON DELETE CASCADE,
    lesson      TEXT    NOT NULL CHECK (lesson <> ''),
    step        INTEGER NOT NULL CHECK (step >= 1),
    passed      INTEGER NOT NULL DEFAULT 0 CHECK (passed IN (0, 1)),
    passed_at   INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    hints_shown INTEGER NOT NULL DEFAULT 0 CHECK (hints_shown >= 0),
    first_seen  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (learner, lesson, step),
    CHECK ((passed = 0 AND passed_at IS NULL) OR (passed = 1 AND passed_at IS NOT NULL))
) STRICT;

CREATE TABLE attempts (
    id      INTEGER NOT NULL PRIMARY KEY,
    learner TEXT    NOT NULL REFERENCES learners (id) ON DELETE CASCADE,
    lesson  TEXT    NOT NULL CHECK (lesson <> ''),
    step    INTEGER NOT NULL CHECK (step >= 1),
    passed  INTEGER NOT NULL CHECK (passed IN (0, 1)),
    results TEXT,
    at      INTEGER NOT NULL
) STRICT;

CREATE INDEX attempts_learner_lesson_at ON attempts (learner, lesson, at);

CREATE TABLE hints (
    learner TEXT    NOT NULL REFERENCES learners (id) ON DELETE CASCADE,
    lesson  TEXT    NOT NULL CHECK (lesson <> ''),
    step    INTEGER NOT NULL CHECK (step >= 1),
    idx     INTEGER NOT NULL CHECK (idx >= 0),
    at      INTEGER NOT NULL,
    PRIMARY KEY (learner, lesson, step, idx)
) STRICT;

-- owner is not a foreign key: warm-pool sandboxes have no owner yet, and a
-- sandbox record must outlive nothing but itself.
CREATE TABLE sandboxes (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
    owner      TEXT    NOT NULL DEFAULT '',
    provider   TEXT    NOT NULL CHECK (provider <> ''),
    kind       INTEGER NOT NULL,
    state      TEXT    NOT NULL CHECK (state IN ('creating', 'ready', 'deleting')),
    detail     TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    last_used  INTEGER NOT NULL
) STRICT;

CREATE INDEX sandboxes_owner ON sandboxes (owner);
