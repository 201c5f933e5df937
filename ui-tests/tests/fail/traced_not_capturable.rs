/// Neither `Serialize` nor `Debug`: Core cannot be told what it is.
pub struct Opaque(u8);

#[openbox::traced]
pub fn weigh(item: Opaque, scale: u32) -> u32 {
    u32::from(item.0) * scale
}

#[openbox::traced]
pub async fn make(seed: u8) -> Opaque {
    Opaque(seed)
}

fn main() {}
