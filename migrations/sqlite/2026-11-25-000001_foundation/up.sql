-- Foundation schema. Portable types only: UUIDs and JSON are TEXT, timestamps
-- are UTC TIMESTAMP values made in Rust. migrations/postgres and migrations/sqlite are the same files (a test checks).

CREATE TABLE principals (
    id           TEXT PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('human', 'service')),
    name         TEXT NOT NULL UNIQUE,
    display_name TEXT,
    email        TEXT,
    status       TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);

-- Argon2id PHC strings for human principals.
CREATE TABLE password_credentials (
    principal_id TEXT PRIMARY KEY NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    phc          TEXT NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);

-- Client secrets of service principals: several per service so that rotation
-- can overlap. Only the keyed hash (HMAC-SHA-256 with the server pepper) is kept.
CREATE TABLE client_secrets (
    id           TEXT PRIMARY KEY NOT NULL,
    principal_id TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP,
    last_used_at TIMESTAMP,
    use_count    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX client_secrets_principal ON client_secrets (principal_id);

CREATE TABLE principal_scopes (
    principal_id TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    scope        TEXT NOT NULL,
    PRIMARY KEY (principal_id, scope)
);
CREATE INDEX principal_scopes_scope ON principal_scopes (scope);

CREATE TABLE categories (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    description TEXT,
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE service_categories (
    principal_id TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    category_id  TEXT NOT NULL REFERENCES categories (id) ON DELETE CASCADE,
    priority     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (principal_id, category_id)
);
CREATE INDEX service_categories_category ON service_categories (category_id);

-- Append-only log of sensitive actions. Never holds a secret or a password.
CREATE TABLE audit_events (
    id           TEXT PRIMARY KEY NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    event_type   TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('ok', 'failed')),
    actor_id     TEXT,
    principal_id TEXT,
    remote_addr  TEXT,
    reason       TEXT,
    details      TEXT
);
CREATE INDEX audit_events_created ON audit_events (created_at, id);
CREATE INDEX audit_events_principal ON audit_events (principal_id, created_at);

-- Server-wide settings, e.g. the keyed check value of the secret pepper.
CREATE TABLE server_settings (
    name       TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
