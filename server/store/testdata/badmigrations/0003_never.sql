-- Must never run: the migration before it failed.
CREATE TABLE never (name TEXT) STRICT;
