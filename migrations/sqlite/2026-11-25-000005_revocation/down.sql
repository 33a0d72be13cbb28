ALTER TABLE refresh_tokens DROP COLUMN client_confidential;
ALTER TABLE principals DROP COLUMN tokens_not_before;
