-- A migration that does some work and then fails: none of it may remain.
CREATE TABLE widgets (name TEXT NOT NULL PRIMARY KEY) STRICT;
INSERT INTO widgets (name) VALUES ('half-done');
INSERT INTO gadgets (name) VALUES ('second');
INSERT INTO nowhere (name) VALUES ('boom');
