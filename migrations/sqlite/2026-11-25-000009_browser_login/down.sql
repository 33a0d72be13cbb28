DROP INDEX refresh_tokens_session;
ALTER TABLE refresh_tokens DROP COLUMN session_id;
DROP TABLE authorization_codes;
DROP TABLE login_sessions;
DROP TABLE client_settings;
