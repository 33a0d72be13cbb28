-- Token exchange (RFC 8693): which audiences a service may exchange its
-- callers' tokens for, and the tokens it was given.

-- A service's exchange policy: the audiences (service names, or
-- urn:roster:category:<name>) it may ask for, as a JSON array, and the
-- longest delegation chain it may make. No row: it may exchange nothing.
CREATE TABLE token_exchange_policies (
    principal_id TEXT PRIMARY KEY NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    audiences    TEXT NOT NULL,
    max_depth    INTEGER NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);

-- Every token issued by an exchange, until it expires: revoking the token
-- it came from (parent_jti), or the token at the start of its chain
-- (root_jti), revokes it too, and names it in the revocation feed.
CREATE TABLE exchanged_tokens (
    jti          TEXT PRIMARY KEY NOT NULL,
    parent_jti   TEXT NOT NULL,
    root_jti     TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    expires_at   TIMESTAMP NOT NULL
);
CREATE INDEX exchanged_tokens_parent ON exchanged_tokens (parent_jti);
CREATE INDEX exchanged_tokens_actor ON exchanged_tokens (actor_id);
CREATE INDEX exchanged_tokens_expires ON exchanged_tokens (expires_at);
