#[openbox::governed_activities]
pub struct NotAnImpl;

fn main() {}
