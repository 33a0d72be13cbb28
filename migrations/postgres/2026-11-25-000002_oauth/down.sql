DROP TABLE revoked_tokens;
DROP TABLE refresh_tokens;
DROP TABLE signing_keys;
