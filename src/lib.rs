//! Roster: identity service and service registry for microservice systems.
//!
//! Layers point down: `http` (handlers, extractors) → the domains (`oauth`,
//! `registry`, `principals`) → `auth` → `models` → `db`. `upkeep` runs the
//! background tick, `state` is the HTTP layer's container, and `cli` and
//! `startup` wire a process together.

pub mod auth;
pub mod blocking;
pub mod cli;
pub mod cli_login;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod feed;
pub mod group_commit;
pub mod http;
pub mod logging;
pub mod models;
pub mod names;
pub mod oauth;
pub mod outbound;
pub mod page;
pub mod principals;
pub mod registry;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod upkeep;
