-- OAuth token service: signing keys, refresh tokens, access-token deny list.

-- JWT signing keys, shared by every instance. The private key is encrypted
-- (AES-256-GCM under a key derived from the pepper); never stored in plaintext.
-- state: next (published, not yet signing) -> active (signing) -> retired
-- (published until publish_until, when the last token it signed has expired).
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY NOT NULL,
    alg           TEXT NOT NULL,
    public_jwk    TEXT NOT NULL,
    private_key   TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    created_at    TIMESTAMP NOT NULL,
    activated_at  TIMESTAMP,
    publish_until TIMESTAMP
);

-- Opaque refresh tokens, stored only as keyed hashes. Rotation keeps a family:
-- presenting a spent token revokes the whole family (RFC 6819 §5.2.2.3).
CREATE TABLE refresh_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    family_id    TEXT NOT NULL,
    principal_id TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    client_id    TEXT,
    token_hash   TEXT NOT NULL UNIQUE,
    scope        TEXT NOT NULL,
    audience     TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    used_at      TIMESTAMP,
    revoked_at   TIMESTAMP
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_principal ON refresh_tokens (principal_id);

-- Revoked access tokens by jti, kept until the token would have expired.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);
