//! What the dashboard does, once each, for the routes and the server
//! functions alike: submitting a checked file as a batch, reading a
//! finished batch's results (spooled, joined, exported), retrying a
//! batch's failures, message batches for Anthropic upstreams, the batch
//! table's pages.

pub mod intake;
pub mod jobs;
pub mod messages;
pub mod results;
pub mod retry;
pub mod spend;
pub mod submit;
pub mod table;
