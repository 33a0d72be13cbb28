-- Access tokens issued at or before this time are dead for good (set when a principal is disabled).
ALTER TABLE principals ADD COLUMN tokens_not_before TIMESTAMP;
