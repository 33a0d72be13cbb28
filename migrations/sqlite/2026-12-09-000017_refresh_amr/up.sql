-- What the login behind a refresh token proved (RFC 8176 method names,
-- space-separated), so that the access tokens it refreshes say so too.
-- NULL for tokens of grants without a person's login (password, exchange).
ALTER TABLE refresh_tokens ADD COLUMN amr TEXT;
