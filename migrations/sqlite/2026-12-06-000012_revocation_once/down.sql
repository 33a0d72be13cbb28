DROP INDEX revocations_token_subject;
