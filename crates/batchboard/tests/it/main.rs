//! Black-box tests of the real `batchboard` binary over HTTP: one test
//! binary for the whole process (the command line, the sandbox, the upstream
//! client against it, the dashboard's routes and server functions, access,
//! live updates, Postgres replicas, results, faults, uploads that stream
//! through).

mod common;
mod pg;

mod access;
mod dashboard;
mod faults;
mod gateway;
mod jobs;
mod live;
mod postgres;
mod providers;
mod results;
mod sandbox;
mod serve;
mod spend;
mod streaming;
mod upstream;
mod webhooks_in;
