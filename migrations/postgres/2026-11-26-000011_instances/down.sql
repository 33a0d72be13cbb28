CREATE TABLE service_registrations (
    principal_id        TEXT PRIMARY KEY NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    base_url            TEXT NOT NULL,
    health_url          TEXT,
    modules_url         TEXT,
    ttl_seconds         INTEGER NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('up', 'down')),
    status_changed_at   TIMESTAMP NOT NULL,
    last_seen           TIMESTAMP NOT NULL,
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
    next_health_at      TIMESTAMP,
    next_manifest_at    TIMESTAMP,
    poll_owner          TEXT,
    poll_lease_until    TIMESTAMP,
    manifest_source     TEXT,
    manifest_pulled_digest TEXT
);
CREATE INDEX service_registrations_status ON service_registrations (status);
-- One instance per service survives the way down: the first by id.
INSERT INTO service_registrations (principal_id, base_url, health_url, modules_url, ttl_seconds,
    status, status_changed_at, last_seen, lease_expires_at, health_checked_at, health_ok,
    health_error, manifest, manifest_etag, manifest_fetched_at, manifest_error, registered_at,
    updated_at, next_health_at, next_manifest_at, manifest_source, manifest_pulled_digest)
SELECT s.principal_id, i.base_url, i.health_url, i.modules_url, i.ttl_seconds, i.status,
    i.status_changed_at, i.last_seen, i.lease_expires_at, i.health_checked_at, i.health_ok,
    i.health_error, s.manifest, s.manifest_etag, s.manifest_fetched_at, s.manifest_error,
    s.registered_at, s.updated_at, i.next_health_at, s.next_manifest_at, s.manifest_source,
    s.manifest_pulled_digest
FROM registry_services s JOIN registry_instances i ON i.principal_id = s.principal_id
WHERE i.instance_id = (SELECT MIN(j.instance_id) FROM registry_instances j WHERE j.principal_id = s.principal_id);
DROP TABLE registry_views;
DROP TABLE registry_transitions;
DROP TABLE registry_instances;
DROP TABLE registry_services;
