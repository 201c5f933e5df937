// A syntax error in the body is reported once, at its place; the function still exists, so
// its callers compile.
#[openbox::traced]
fn score(text: &str) -> usize {
    let n = text.len() +;
    n
}

fn main() {
    let _ = score("x");
}
