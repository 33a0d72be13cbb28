DROP TABLE revocations;
ALTER TABLE auth_state DROP COLUMN revocation_index;
