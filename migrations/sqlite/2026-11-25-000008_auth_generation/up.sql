-- A counter bumped in the same transaction as every change that can make a
-- verified client stop being valid: its status, its scopes, its secrets.
-- Each instance reads it on its background tick and drops its cache of
-- verified clients when it has moved.
CREATE TABLE auth_state (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO auth_state (id, generation) VALUES (1, 0);
