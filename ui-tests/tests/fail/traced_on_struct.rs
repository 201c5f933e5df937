#[openbox::traced]
pub struct NotAFunction;

#[openbox::traced]
pub const LIMIT: u32 = 3;

fn main() {}
