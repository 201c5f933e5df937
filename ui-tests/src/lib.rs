//! Compile-pass and compile-fail cases of the openbox macros live in `tests/`.
