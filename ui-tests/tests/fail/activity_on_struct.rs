use openbox::governed_activity;

#[governed_activity]
pub struct NotAnActivity;

fn main() {}
