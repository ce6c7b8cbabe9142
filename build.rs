//! Rebuilds the crate when a migration is added or removed: `sqlx::migrate!` embeds the
//! `migrations/` folders at compile time, and cargo tracks only the files it embedded.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
