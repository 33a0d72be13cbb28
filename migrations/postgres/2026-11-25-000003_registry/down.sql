DROP TABLE registry_state;
DROP TABLE service_registrations;
