//! What the dashboard does, once each, for the routes and the server
//! functions alike: submitting a checked file as a batch, reading a
//! finished batch's results (spooled, joined, exported), and retrying a
//! batch's failures.

pub mod intake;
pub mod results;
pub mod retry;
pub mod submit;
