-- 0005: a sandbox's end of life. NULL: the server's maximum lifetime after
-- created_at; a learner who extends their sandbox moves it later, and a
-- restarted server keeps the extension. UTC unix nanoseconds.

ALTER TABLE sandboxes ADD COLUMN expires_at INTEGER;
