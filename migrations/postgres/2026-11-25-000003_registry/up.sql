-- The service registry: one registration per service principal.
-- status: up | down. A service principal without a row is "unknown".
CREATE TABLE service_registrations (
    principal_id        TEXT PRIMARY KEY NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    base_url            TEXT NOT NULL,
    health_url          TEXT,
    modules_url         TEXT,
    ttl_seconds         INTEGER NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('up', 'down')),
    status_changed_at   TIMESTAMP NOT NULL,
    -- last heartbeat, registration or passing health check; the TTL lease runs from here
    last_seen           TIMESTAMP NOT NULL,
    -- last_seen + ttl, computed in Rust so that the lapse query is portable
    lease_expires_at    TIMESTAMP NOT NULL,
    health_checked_at   TIMESTAMP,
    health_ok           INTEGER,
    health_error        TEXT,
    manifest            TEXT,
    manifest_etag       TEXT,
    manifest_fetched_at TIMESTAMP,
    manifest_error      TEXT,
    registered_at       TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL,
    -- Polling lease: of several Roster instances, the one holding it polls this service.
    next_health_at      TIMESTAMP,
    next_manifest_at    TIMESTAMP,
    poll_owner          TEXT,
    poll_lease_until    TIMESTAMP
);
CREATE INDEX service_registrations_status ON service_registrations (status);

-- One row: a counter bumped in the same transaction as every registry change.
-- Long-polling clients wait for it to pass the index they last saw.
CREATE TABLE registry_state (
    id           INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    change_index BIGINT NOT NULL
);
INSERT INTO registry_state (id, change_index) VALUES (1, 0);
