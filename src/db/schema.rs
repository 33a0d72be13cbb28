//! Table definitions shared by both backends. Only portable SQL types are used
//! (Text, Integer, BigInt, Timestamp), so one schema serves SQLite and PostgreSQL.

diesel::table! {
    principals (id) {
        id -> Text,
        kind -> Text,
        name -> Text,
        display_name -> Nullable<Text>,
        email -> Nullable<Text>,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        tokens_not_before -> Nullable<Timestamp>,
    }
}

diesel::table! {
    password_credentials (principal_id) {
        principal_id -> Text,
        phc -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    client_secrets (id) {
        id -> Text,
        principal_id -> Text,
        secret_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        use_count -> BigInt,
    }
}

diesel::table! {
    principal_scopes (principal_id, scope) {
        principal_id -> Text,
        scope -> Text,
    }
}

diesel::table! {
    categories (id) {
        id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    service_categories (principal_id, category_id) {
        principal_id -> Text,
        category_id -> Text,
        priority -> Integer,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        created_at -> Timestamp,
        event_type -> Text,
        outcome -> Text,
        actor_id -> Nullable<Text>,
        principal_id -> Nullable<Text>,
        remote_addr -> Nullable<Text>,
        reason -> Nullable<Text>,
        details -> Nullable<Text>,
        repeat_count -> Integer,
    }
}

diesel::table! {
    server_settings (name) {
        name -> Text,
        value -> Text,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(password_credentials -> principals (principal_id));
diesel::joinable!(client_secrets -> principals (principal_id));
diesel::joinable!(principal_scopes -> principals (principal_id));
diesel::joinable!(service_categories -> principals (principal_id));
diesel::joinable!(service_categories -> categories (category_id));

diesel::allow_tables_to_appear_in_same_query!(
    principals,
    password_credentials,
    client_secrets,
    principal_scopes,
    categories,
    service_categories,
    audit_events,
    server_settings,
    auth_state,
);

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        public_jwk -> Text,
        private_key -> Text,
        state -> Text,
        created_at -> Timestamp,
        activated_at -> Nullable<Timestamp>,
        publish_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        family_id -> Text,
        principal_id -> Text,
        client_id -> Nullable<Text>,
        token_hash -> Text,
        scope -> Text,
        audience -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        client_confidential -> Bool,
        session_id -> Nullable<Text>,
        amr -> Nullable<Text>,
    }
}

diesel::table! {
    client_settings (principal_id) {
        principal_id -> Text,
        public_client -> Bool,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    login_sessions (id) {
        id -> Text,
        token_hash -> Text,
        principal_id -> Text,
        auth_time -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
        amr -> Text,
        pending -> Nullable<Text>,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        client_id -> Text,
        principal_id -> Text,
        session_id -> Text,
        redirect_uri -> Text,
        code_challenge -> Text,
        nonce -> Nullable<Text>,
        scope -> Text,
        auth_time -> Timestamp,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        refresh_family_id -> Nullable<Text>,
        access_jti -> Nullable<Text>,
        access_expires_at -> Nullable<Timestamp>,
        amr -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(client_settings, principals);

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        expires_at -> Timestamp,
        revoked_at -> Timestamp,
    }
}

diesel::joinable!(refresh_tokens -> principals (principal_id));
diesel::allow_tables_to_appear_in_same_query!(refresh_tokens, principals);

diesel::table! {
    registry_services (principal_id) {
        principal_id -> Text,
        status -> Text,
        status_changed_at -> Timestamp,
        description -> Nullable<Text>,
        meta -> Nullable<Text>,
        manifest -> Nullable<Text>,
        manifest_etag -> Nullable<Text>,
        manifest_fetched_at -> Nullable<Timestamp>,
        manifest_error -> Nullable<Text>,
        manifest_source -> Nullable<Text>,
        manifest_pulled_digest -> Nullable<Text>,
        next_manifest_at -> Nullable<Timestamp>,
        registered_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    registry_instances (principal_id, instance_id) {
        principal_id -> Text,
        instance_id -> Text,
        base_url -> Text,
        health_url -> Nullable<Text>,
        modules_url -> Nullable<Text>,
        ttl_seconds -> Integer,
        status -> Text,
        status_changed_at -> Timestamp,
        draining -> Integer,
        last_seen -> Timestamp,
        lease_expires_at -> Timestamp,
        lease_lapsed -> Integer,
        health_checked_at -> Nullable<Timestamp>,
        health_ok -> Nullable<Integer>,
        health_error -> Nullable<Text>,
        failures -> Integer,
        passes -> Integer,
        failures_before_down -> Integer,
        passes_before_up -> Integer,
        source -> Text,
        next_health_at -> Nullable<Timestamp>,
        registered_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    registry_transitions (id) {
        id -> Text,
        principal_id -> Text,
        seq -> BigInt,
        instance_id -> Nullable<Text>,
        from_status -> Text,
        to_status -> Text,
        reason -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    registry_views (view_key) {
        view_key -> Text,
        modify_index -> BigInt,
    }
}

diesel::table! {
    auth_state (id) {
        id -> Integer,
        generation -> BigInt,
        revocation_index -> BigInt,
    }
}

diesel::table! {
    revocations (idx) {
        idx -> BigInt,
        kind -> Text,
        subject -> Text,
        status -> Nullable<Text>,
        not_before -> Nullable<Timestamp>,
        scopes -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(revoked_tokens, revocations);

diesel::table! {
    registry_state (id) {
        id -> Integer,
        change_index -> BigInt,
    }
}

diesel::joinable!(registry_services -> principals (principal_id));
diesel::joinable!(registry_instances -> registry_services (principal_id));
diesel::allow_tables_to_appear_in_same_query!(registry_services, principals);
diesel::allow_tables_to_appear_in_same_query!(registry_services, service_categories);
diesel::allow_tables_to_appear_in_same_query!(registry_services, categories);
diesel::allow_tables_to_appear_in_same_query!(registry_services, registry_instances);
diesel::allow_tables_to_appear_in_same_query!(registry_instances, principals);

diesel::table! {
    login_throttles (key) {
        key -> Text,
        subject -> Nullable<Text>,
        failures -> Integer,
        last_failure -> Timestamp,
        blocked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    client_keys (principal_id) {
        principal_id -> Text,
        auth_method -> Text,
        jwks -> Nullable<Text>,
        jwks_uri -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    client_assertion_jtis (principal_id, jti) {
        principal_id -> Text,
        jti -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    federated_issuers (id) {
        id -> Text,
        issuer -> Text,
        audience -> Text,
        jwks -> Nullable<Text>,
        jwks_uri -> Nullable<Text>,
        max_lifetime_secs -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    federated_subjects (issuer_id, subject) {
        issuer_id -> Text,
        subject -> Text,
        principal_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(federated_subjects -> federated_issuers (issuer_id));
diesel::allow_tables_to_appear_in_same_query!(federated_subjects, federated_issuers);
diesel::allow_tables_to_appear_in_same_query!(federated_subjects, principals);
diesel::allow_tables_to_appear_in_same_query!(client_keys, principals);

diesel::table! {
    token_exchange_policies (principal_id) {
        principal_id -> Text,
        audiences -> Text,
        max_depth -> Integer,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    exchanged_tokens (jti) {
        jti -> Text,
        parent_jti -> Text,
        root_jti -> Text,
        principal_id -> Text,
        actor_id -> Text,
        expires_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(exchanged_tokens, revoked_tokens);

diesel::table! {
    second_factors (id) {
        id -> Text,
        principal_id -> Text,
        kind -> Text,
        name -> Text,
        secret -> Nullable<Text>,
        credential_id -> Nullable<Text>,
        passkey -> Nullable<Text>,
        last_step -> Nullable<BigInt>,
        confirmed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    recovery_codes (code_hash) {
        code_hash -> Text,
        principal_id -> Text,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    mfa_settings (principal_id) {
        principal_id -> Text,
        mfa -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    device_codes (device_code_hash) {
        device_code_hash -> Text,
        user_code -> Text,
        client_id -> Text,
        scope -> Text,
        status -> Text,
        interval_secs -> BigInt,
        next_poll_at -> Timestamp,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        principal_id -> Nullable<Text>,
        session_id -> Nullable<Text>,
        amr -> Nullable<Text>,
        auth_time -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webauthn_ceremonies (id) {
        id -> Text,
        principal_id -> Nullable<Text>,
        kind -> Text,
        name -> Nullable<Text>,
        state -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    invitations (token_hash) {
        token_hash -> Text,
        principal_id -> Text,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}
