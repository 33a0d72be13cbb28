-- Browser login (OpenID Connect, authorization code + PKCE).

-- What a service needs to log people in: where it may be sent back after a
-- login and after a logout (exact URLs, JSON arrays), and whether it is a
-- public client (a frontend without a secret, RFC 6749 §2.1).
CREATE TABLE client_settings (
    principal_id              TEXT PRIMARY KEY NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    public_client             BOOLEAN NOT NULL,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    updated_at                TIMESTAMP NOT NULL
);

-- Login sessions of people in the browser, shared by every instance. The
-- cookie holds a random token; only its keyed hash is stored. `id` is the
-- public session id (the ID token's `sid`).
CREATE TABLE login_sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    principal_id TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    auth_time    TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    ended_at     TIMESTAMP
);
CREATE INDEX login_sessions_principal ON login_sessions (principal_id);
CREATE INDEX login_sessions_expires ON login_sessions (expires_at);

-- Authorization codes (RFC 6749 §4.1.2), stored as keyed hashes, used once.
-- The tokens issued from a code are recorded with it, so that a second use
-- revokes them (§4.1.2).
CREATE TABLE authorization_codes (
    code_hash         TEXT PRIMARY KEY NOT NULL,
    client_id         TEXT NOT NULL,
    principal_id      TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    session_id        TEXT NOT NULL,
    redirect_uri      TEXT NOT NULL,
    code_challenge    TEXT NOT NULL,
    nonce             TEXT,
    scope             TEXT NOT NULL,
    auth_time         TIMESTAMP NOT NULL,
    created_at        TIMESTAMP NOT NULL,
    expires_at        TIMESTAMP NOT NULL,
    used_at           TIMESTAMP,
    refresh_family_id TEXT,
    access_jti        TEXT,
    access_expires_at TIMESTAMP
);
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);

-- Refresh tokens issued under a login session end with it (logout, disable).
ALTER TABLE refresh_tokens ADD COLUMN session_id TEXT;
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
