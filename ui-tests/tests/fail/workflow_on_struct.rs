#[openbox::governed_workflow]
pub struct NotAnImpl;

fn main() {}
