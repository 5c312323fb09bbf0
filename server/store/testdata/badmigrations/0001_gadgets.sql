-- A good first migration: it must stay applied when 0002 fails.
CREATE TABLE gadgets (name TEXT NOT NULL PRIMARY KEY) STRICT;
INSERT INTO gadgets (name) VALUES ('first');
