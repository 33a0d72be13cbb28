-- Which writer set the manifest last ('pushed' or 'pulled'), and a digest of
-- the last manifest pulled from modules_url. A pull replaces a pushed
-- manifest only when the service's own manifest changed since the last pull.
ALTER TABLE service_registrations ADD COLUMN manifest_source TEXT;
ALTER TABLE service_registrations ADD COLUMN manifest_pulled_digest TEXT;
