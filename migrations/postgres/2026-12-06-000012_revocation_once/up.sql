-- Each revoked token enters the revocation feed once: a second revoke finds
-- its row cheaply, and a concurrent one cannot add another. (The feed's
-- numbering commits with the change since 2026-12; rows that an older
-- Roster put on the deny list only are added by the background tick.)
CREATE UNIQUE INDEX revocations_token_subject ON revocations (subject) WHERE kind = 'token';
