//! Roster: identity service and service registry for microservice systems.

pub mod auth;
pub mod blocking;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod models;
pub mod oauth;
pub mod principals;
pub mod registry;
pub mod startup;
pub mod state;
