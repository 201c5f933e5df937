//! Empty: present so that the build-dependencies this crate pins are part of the build.
fn main() {}
