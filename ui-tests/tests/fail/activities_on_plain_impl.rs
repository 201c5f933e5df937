pub struct Acts;

#[openbox::governed_activities]
impl Acts {
    pub fn go(&self) {}
}

fn main() {}
