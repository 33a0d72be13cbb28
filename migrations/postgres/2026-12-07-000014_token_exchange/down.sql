DROP TABLE exchanged_tokens;
DROP TABLE token_exchange_policies;
