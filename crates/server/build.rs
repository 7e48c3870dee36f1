//! Compiles the crate again when a migration is added: `sqlx::migrate!`
//! reads the folders at compile time, and cargo would otherwise see only
//! changes to the files it already embedded (sqlx's own advice).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
