DROP TABLE auth_state;
