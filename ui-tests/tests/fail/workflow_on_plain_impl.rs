pub struct Flow;

#[openbox::governed_workflow]
impl Flow {
    pub fn run(&self) {}
}

fn main() {}
