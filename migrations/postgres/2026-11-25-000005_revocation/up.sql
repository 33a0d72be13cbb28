-- Access tokens issued at or before this time are dead for good (set when a principal is disabled).
ALTER TABLE principals ADD COLUMN tokens_not_before TIMESTAMP;
-- A refresh token issued to a client that proved its secret refreshes only with that secret.
ALTER TABLE refresh_tokens ADD COLUMN client_confidential BOOLEAN NOT NULL DEFAULT FALSE;
