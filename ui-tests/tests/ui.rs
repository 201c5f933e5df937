//! Every macro error message. The shapes that must compile are test programs of their own
//! (`tests/pass/`, see `Cargo.toml`): with compile-fail cases only, trybuild checks the crate
//! graph instead of building it.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/fail/*.rs");
}
