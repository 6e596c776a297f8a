// `sqlx::migrate!` embeds the migrations at compile time; a new or changed migration must
// rebuild the crate (as sqlx's own `sqlx migrate build-script` sets up).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
