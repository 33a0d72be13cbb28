-- Failed password logins, counted per (username, source network), per source
-- network and per username, so that guessing is slowed down everywhere it
-- comes from and across every instance. `subject` keeps the principal's id
-- when the name is one, for admins; keys never hold a typed name in clear.
CREATE TABLE login_throttles (
    key           TEXT PRIMARY KEY NOT NULL,
    subject       TEXT,
    failures      INTEGER NOT NULL,
    last_failure  TIMESTAMP NOT NULL,
    blocked_until TIMESTAMP
);
CREATE INDEX login_throttles_subject ON login_throttles (subject);
