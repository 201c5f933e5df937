//! Shapes `#[traced]` accepts.

use serde::Serialize;

#[derive(Serialize)]
pub struct Order {
    pub id: u32,
}

#[derive(Debug)]
pub struct DebugOnly(pub u8);

/// Not capturable, but capture is off.
pub struct Opaque;

#[openbox::traced]
pub fn plain(x: i64) -> i64 {
    x * 2
}

#[openbox::traced]
pub fn unit(_x: &str) {}

#[openbox::traced(name = "score", max_arg_length = 64)]
pub async fn score(order: &Order, note: DebugOnly) -> Result<u32, anyhow::Error> {
    Ok(order.id + u32::from(note.0))
}

#[openbox::traced(capture_args = false, capture_result = false)]
pub fn opaque(_o: Opaque) -> Opaque {
    Opaque
}

#[openbox::traced]
pub fn destructured((a, b): (u32, u32), Order { id }: Order) -> u32 {
    a + b + id
}

#[openbox::traced]
pub fn generic<T: std::fmt::Debug>(value: T) -> String {
    format!("{value:?}")
}

#[openbox::traced]
pub fn returns_impl(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[openbox::traced]
pub fn early_return(n: u32) -> Result<u32, std::io::Error> {
    if n == 0 {
        return Err(std::io::Error::other("zero"));
    }
    let parsed: u32 = "7".parse().map_err(std::io::Error::other)?;
    Ok(n + parsed)
}

pub struct Counter {
    pub count: u32,
}

impl Counter {
    #[openbox::traced]
    pub fn bump(&mut self, by: u32) -> u32 {
        self.count += by;
        self.count
    }

    #[openbox::traced]
    pub async fn peek(&self) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.count)
    }
}

fn main() {
    assert_eq!(plain(2), 4);
    unit("x");
    let _ = opaque(Opaque);
    assert_eq!(destructured((1, 2), Order { id: 3 }), 6);
    assert_eq!(generic(5), "5");
    assert_eq!(returns_impl(3).count(), 3);
    assert!(early_return(0).is_err());
    let mut c = Counter { count: 0 };
    assert_eq!(c.bump(2), 2);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(
        rt.block_on(score(&Order { id: 1 }, DebugOnly(2))).unwrap(),
        3
    );
    assert_eq!(rt.block_on(c.peek()).unwrap(), 2);
}
