ALTER TABLE principals DROP COLUMN tokens_not_before;
