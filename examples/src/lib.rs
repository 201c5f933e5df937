//! Examples of the openbox SDK live in `examples/`.
