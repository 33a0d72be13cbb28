-- Registry, second round: a service runs as instances (replicas), each with
-- its own address, lease and damped health state; the service keeps what is
-- shared (its derived status, manifest, description and meta). Every view a
-- watcher can block on has a modify index, so that a blocking query wakes
-- only when what it shows changed.

CREATE TABLE registry_services (
    principal_id           TEXT PRIMARY KEY NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    -- Derived from the instances: up when at least one is up.
    status                 TEXT NOT NULL CHECK (status IN ('up', 'down')),
    status_changed_at      TIMESTAMP NOT NULL,
    description            TEXT,
    -- A JSON object of short strings.
    meta                   TEXT,
    manifest               TEXT,
    manifest_etag          TEXT,
    manifest_fetched_at    TIMESTAMP,
    manifest_error         TEXT,
    manifest_source        TEXT,
    manifest_pulled_digest TEXT,
    next_manifest_at       TIMESTAMP,
    registered_at          TIMESTAMP NOT NULL,
    updated_at             TIMESTAMP NOT NULL
);
CREATE INDEX registry_services_status ON registry_services (status);

CREATE TABLE registry_instances (
    principal_id         TEXT NOT NULL REFERENCES registry_services (principal_id) ON DELETE CASCADE,
    instance_id          TEXT NOT NULL,
    base_url             TEXT NOT NULL,
    health_url           TEXT,
    modules_url          TEXT,
    ttl_seconds          INTEGER NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('up', 'down')),
    status_changed_at    TIMESTAMP NOT NULL,
    draining             INTEGER NOT NULL,
    last_seen            TIMESTAMP NOT NULL,
    lease_expires_at     TIMESTAMP NOT NULL,
    -- 1 once the current lease's lapse has been counted as a failure.
    lease_lapsed         INTEGER NOT NULL,
    health_checked_at    TIMESTAMP,
    health_ok            INTEGER,
    health_error         TEXT,
    -- Consecutive failed and passed checks, for flap damping.
    failures             INTEGER NOT NULL,
    passes               INTEGER NOT NULL,
    failures_before_down INTEGER NOT NULL,
    passes_before_up     INTEGER NOT NULL,
    -- 'api' (registered over HTTP) or 'docker' (discovered from labels).
    source               TEXT NOT NULL,
    next_health_at       TIMESTAMP,
    registered_at        TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL,
    PRIMARY KEY (principal_id, instance_id)
);
CREATE INDEX registry_instances_lease ON registry_instances (lease_expires_at);
CREATE INDEX registry_instances_health ON registry_instances (next_health_at);

-- Status changes of instances (instance_id set) and services (NULL), the
-- last few kept per service.
CREATE TABLE registry_transitions (
    id           TEXT PRIMARY KEY NOT NULL,
    principal_id TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    -- Per service, in the order recorded (writers of one service hold its lock).
    seq          BIGINT NOT NULL,
    instance_id  TEXT,
    from_status  TEXT NOT NULL,
    to_status    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    at           TIMESTAMP NOT NULL
);
CREATE INDEX registry_transitions_service ON registry_transitions (principal_id, seq);

-- The change index at which each watchable view ('service:NAME',
-- 'category:NAME', 'modules') last changed.
CREATE TABLE registry_views (
    view_key     TEXT PRIMARY KEY NOT NULL,
    modify_index BIGINT NOT NULL
);
CREATE INDEX registry_views_index ON registry_views (modify_index);

INSERT INTO registry_services (principal_id, status, status_changed_at, manifest, manifest_etag,
    manifest_fetched_at, manifest_error, manifest_source, manifest_pulled_digest, next_manifest_at,
    registered_at, updated_at)
SELECT principal_id, status, status_changed_at, manifest, manifest_etag, manifest_fetched_at,
    manifest_error, manifest_source, manifest_pulled_digest, next_manifest_at, registered_at, updated_at
FROM service_registrations;

INSERT INTO registry_instances (principal_id, instance_id, base_url, health_url, modules_url,
    ttl_seconds, status, status_changed_at, draining, last_seen, lease_expires_at, lease_lapsed,
    health_checked_at, health_ok, health_error, failures, passes, failures_before_down,
    passes_before_up, source, next_health_at, registered_at, updated_at)
SELECT principal_id, 'default', base_url, health_url, modules_url, ttl_seconds, status,
    status_changed_at, 0, last_seen, lease_expires_at, 0, health_checked_at, health_ok,
    health_error, 0, 0, 3, 2, 'api', next_health_at, registered_at, updated_at
FROM service_registrations;

DROP TABLE service_registrations;
