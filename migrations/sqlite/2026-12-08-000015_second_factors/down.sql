DROP TABLE device_codes;
ALTER TABLE authorization_codes DROP COLUMN amr;
ALTER TABLE login_sessions DROP COLUMN pending;
ALTER TABLE login_sessions DROP COLUMN amr;
DROP TABLE mfa_settings;
DROP TABLE webauthn_ceremonies;
DROP TABLE recovery_codes;
DROP TABLE second_factors;
