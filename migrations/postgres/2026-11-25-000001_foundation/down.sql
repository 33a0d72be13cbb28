DROP TABLE server_settings;
DROP TABLE audit_events;
DROP TABLE service_categories;
DROP TABLE categories;
DROP TABLE principal_scopes;
DROP TABLE client_secrets;
DROP TABLE password_credentials;
DROP TABLE principals;
