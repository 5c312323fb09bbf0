-- 0003: drills, timed and scored lessons. One drill_attempts row per start;
-- drill_results keeps every check run during it (points is what that run
-- earned: a check's points the first time it passes, else 0); drill_hints
-- keeps each hint shown during it with what it cost. score is recomputed
-- from those two tables, never below 0. classroom_id stays NULL until
-- classrooms exist. Times are UTC unix nanoseconds, NULL for "never".

CREATE TABLE drill_attempts (
    id           INTEGER NOT NULL PRIMARY KEY,
    learner      TEXT    NOT NULL REFERENCES learners (id) ON DELETE CASCADE,
    lesson       TEXT    NOT NULL CHECK (lesson <> ''),
    started      INTEGER NOT NULL,
    deadline     INTEGER NOT NULL CHECK (deadline > started),
    finished     INTEGER,
    score        INTEGER NOT NULL DEFAULT 0 CHECK (score >= 0),
    max_score    INTEGER NOT NULL CHECK (max_score >= 0),
    timed_out    INTEGER NOT NULL DEFAULT 0 CHECK (timed_out IN (0, 1)),
    classroom_id TEXT
) STRICT;

CREATE INDEX drill_attempts_learner ON drill_attempts (learner, lesson, id);
CREATE INDEX drill_attempts_lesson ON drill_attempts (lesson, classroom_id);

CREATE TABLE drill_results (
    id       INTEGER NOT NULL PRIMARY KEY,
    attempt  INTEGER NOT NULL REFERENCES drill_attempts (id) ON DELETE CASCADE,
    step     INTEGER NOT NULL CHECK (step >= 1),
    check_id TEXT    NOT NULL CHECK (check_id <> ''),
    passed   INTEGER NOT NULL CHECK (passed IN (0, 1)),
    message  TEXT    NOT NULL,
    points   INTEGER NOT NULL CHECK (points >= 0),
    at       INTEGER NOT NULL
) STRICT;

CREATE INDEX drill_results_attempt ON drill_results (attempt, check_id);

CREATE TABLE drill_hints (
    attempt INTEGER NOT NULL REFERENCES drill_attempts (id) ON DELETE CASCADE,
    step    INTEGER NOT NULL CHECK (step >= 1),
    idx     INTEGER NOT NULL CHECK (idx >= 0),
    cost    INTEGER NOT NULL CHECK (cost >= 0),
    at      INTEGER NOT NULL,
    PRIMARY KEY (attempt, step, idx)
) STRICT;
