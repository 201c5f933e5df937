// Every option mistake is reported at once, and the function still expands.
#[openbox::traced(nmae = "x", name = "a", name = "b", capture_args = "no", capture_result, max_arg_length = -1)]
pub fn score(x: u32) -> u32 {
    x
}

fn main() {
    let _ = score(1);
}
