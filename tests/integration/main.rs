//! The one integration test binary: real HTTP, real processes, both backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // helpers are shared by all test modules; not every one uses each
mod support;

mod admin;
mod architecture;
mod assertions;
mod bodies;
mod browser_login;
mod cli;
mod client;
mod concurrency;
mod connections;
mod console;
mod credentials;
mod device;
mod discovery;
mod domain;
mod examples;
mod exchange;
mod factors;
mod faults;
mod hardening;
mod health;
mod instances;
mod keys;
mod live;
mod metrics;
mod migrations;
mod oauth;
mod openapi;
mod passkeys;
mod registry;
mod revocations;
mod throttle;
