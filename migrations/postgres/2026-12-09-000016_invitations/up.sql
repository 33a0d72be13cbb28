-- Invitations: a single-use link with which a person who has no password
-- and no passkey registers their first passkey. The token is kept only by
-- keyed hash; a new invitation replaces the person's unused ones.
CREATE TABLE invitations (
    token_hash   TEXT PRIMARY KEY NOT NULL,
    principal_id TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    created_by   TEXT,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    used_at      TIMESTAMP
);
CREATE INDEX invitations_principal ON invitations (principal_id);
CREATE INDEX invitations_expires ON invitations (expires_at);
