// Gives every build its own version string (`0.1.0+<build time>`), so the CLI notices a daemon
// left running by an older install and replaces it (its dynos are re-adopted, not orphaned).
fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    println!("cargo:rustc-env=DYNO_BUILD_ID={t}");
}
