-- The revocation feed (GET /api/v1/revocations): every revoked access token
-- and every change to a principal that ends or narrows its tokens, in the
-- order of a counter bumped in the same transaction, so that a service
-- verifying tokens offline can follow it from any index it has seen.
ALTER TABLE auth_state ADD COLUMN revocation_index BIGINT NOT NULL DEFAULT 0;
CREATE TABLE revocations (
    idx         BIGINT PRIMARY KEY NOT NULL,
    -- 'token' (subject is a jti) or 'principal' (subject is a principal id).
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    -- A principal's state after the change: status, tokens_not_before, scopes (JSON).
    status      TEXT,
    not_before  TIMESTAMP,
    scopes      TEXT,
    created_at  TIMESTAMP NOT NULL,
    -- Once no token it concerns can still be valid, the entry is forgotten.
    expires_at  TIMESTAMP NOT NULL
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);
