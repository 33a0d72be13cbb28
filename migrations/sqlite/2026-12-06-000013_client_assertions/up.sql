-- Services without secrets: private_key_jwt (RFC 7523 §2.2) and workload
-- identity federation.

-- How a service authenticates at the token endpoint (RFC 7591's
-- token_endpoint_auth_method) and, for private_key_jwt, its public keys:
-- a JWK Set (JSON) or the URL it is fetched from. A service without a row
-- authenticates with its client secret, as before.
CREATE TABLE client_keys (
    principal_id TEXT PRIMARY KEY NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    auth_method  TEXT NOT NULL,
    jwks         TEXT,
    jwks_uri     TEXT,
    updated_at   TIMESTAMP NOT NULL
);

-- The jti of every client assertion accepted, until it expires: an
-- assertion is used once (RFC 7523 §3 item 7), across every instance, by
-- the primary key.
CREATE TABLE client_assertion_jtis (
    principal_id TEXT NOT NULL,
    jti          TEXT NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (principal_id, jti)
);
CREATE INDEX client_assertion_jtis_expires ON client_assertion_jtis (expires_at);

-- Issuers whose tokens stand for a service (Kubernetes, SPIFFE, CI
-- platforms): their identifier, the audience their tokens must carry for
-- Roster, their keys, and the longest token lifetime accepted.
CREATE TABLE federated_issuers (
    id                TEXT PRIMARY KEY NOT NULL,
    issuer            TEXT NOT NULL UNIQUE,
    audience          TEXT NOT NULL,
    jwks              TEXT,
    jwks_uri          TEXT,
    max_lifetime_secs INTEGER NOT NULL,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);

-- Which external identity stands for which service: one subject of one
-- issuer maps to at most one principal, by the primary key.
CREATE TABLE federated_subjects (
    issuer_id    TEXT NOT NULL REFERENCES federated_issuers (id),
    subject      TEXT NOT NULL,
    principal_id TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (issuer_id, subject)
);
CREATE INDEX federated_subjects_principal ON federated_subjects (principal_id);
