DROP TABLE federated_subjects;
DROP TABLE federated_issuers;
DROP TABLE client_assertion_jtis;
DROP TABLE client_keys;
