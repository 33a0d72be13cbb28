ALTER TABLE service_registrations DROP COLUMN manifest_pulled_digest;
ALTER TABLE service_registrations DROP COLUMN manifest_source;
