/// An error type that cannot say "governance stopped this call".
#[derive(Debug)]
pub struct MyError;

impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("my error")
    }
}

#[openbox::traced]
pub async fn lookup(id: u32) -> Result<u32, MyError> {
    Ok(id)
}

fn main() {}
