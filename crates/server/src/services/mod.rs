//! What the dashboard does, once each, for the routes and the server
//! functions alike: submitting a checked file as a batch, and retrying a
//! batch's failures.

pub mod retry;
pub mod submit;
