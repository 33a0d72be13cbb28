-- Second factors (TOTP, passkeys), recovery codes, each person's MFA
-- setting, what a login session proved, and device authorizations.

-- A person's second factors. A TOTP factor keeps its secret sealed (AEAD
-- under a key derived from the pepper) and the last time step it accepted,
-- so that no code is accepted twice. A passkey keeps webauthn-rs's
-- credential as JSON and its credential id. A factor counts once confirmed.
CREATE TABLE second_factors (
    id            TEXT PRIMARY KEY NOT NULL,
    principal_id  TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    secret        TEXT,
    credential_id TEXT,
    passkey       TEXT,
    last_step     BIGINT,
    confirmed_at  TIMESTAMP,
    created_at    TIMESTAMP NOT NULL,
    last_used_at  TIMESTAMP
);
CREATE INDEX second_factors_principal ON second_factors (principal_id);
CREATE UNIQUE INDEX second_factors_credential ON second_factors (credential_id);

-- Single-use recovery codes, by keyed hash.
CREATE TABLE recovery_codes (
    code_hash    TEXT PRIMARY KEY NOT NULL,
    principal_id TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    created_at   TIMESTAMP NOT NULL,
    used_at      TIMESTAMP
);
CREATE INDEX recovery_codes_principal ON recovery_codes (principal_id);

-- WebAuthn ceremonies under way (a passkey's registration, a passkey
-- login): webauthn-rs's state between the challenge and the answer, used
-- once, for a few minutes.
CREATE TABLE webauthn_ceremonies (
    id           TEXT PRIMARY KEY NOT NULL,
    principal_id TEXT,
    kind         TEXT NOT NULL,
    name         TEXT,
    state        TEXT NOT NULL,
    expires_at   TIMESTAMP NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires ON webauthn_ceremonies (expires_at);

-- A person's MFA setting; no row is 'optional'.
CREATE TABLE mfa_settings (
    principal_id TEXT PRIMARY KEY NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    mfa          TEXT NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);

-- What a login session proved (RFC 8176 method names, space-separated),
-- and the step still due before it counts ('second_factor' or 'enrol').
ALTER TABLE login_sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE login_sessions ADD COLUMN pending TEXT;
ALTER TABLE authorization_codes ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';

-- Device authorizations (RFC 8628): the device code by keyed hash, the
-- user code the person types, and, once answered, who approved it.
CREATE TABLE device_codes (
    device_code_hash TEXT PRIMARY KEY NOT NULL,
    user_code        TEXT NOT NULL,
    client_id        TEXT NOT NULL,
    scope            TEXT NOT NULL,
    status           TEXT NOT NULL,
    interval_secs    BIGINT NOT NULL,
    next_poll_at     TIMESTAMP NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    principal_id     TEXT,
    session_id       TEXT,
    amr              TEXT,
    auth_time        TIMESTAMP
);
CREATE UNIQUE INDEX device_codes_user_code ON device_codes (user_code);
CREATE INDEX device_codes_expires ON device_codes (expires_at);
