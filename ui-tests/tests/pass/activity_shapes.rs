//! Every activity shape #[governed_activity] supports.
use std::sync::Arc;

use openbox::governed_activity;
use serde::{Deserialize, Serialize};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

#[derive(Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
    pub items: Vec<String>,
}

pub struct Acts {
    pub prefix: String,
}

#[activities]
impl Acts {
    #[activity]
    #[governed_activity]
    pub async fn no_args(_ctx: ActivityContext) -> Result<(), ActivityError> {
        Ok(())
    }

    #[activity(name = "place_order")]
    #[governed_activity(capture_input = false, capture_output = false, approval = false)]
    pub async fn place(
        self: Arc<Self>,
        ctx: ActivityContext,
        mut order: Order,
    ) -> Result<String, ActivityError> {
        order.items.push(self.prefix.clone());
        if order.items.is_empty() {
            return Err(anyhow::anyhow!("empty").into());
        }
        Ok(format!(
            "{} {} {}",
            ctx.info().attempt,
            order.id,
            order.items.len()
        ))
    }

    #[activity]
    #[governed_activity]
    pub fn sync_three(
        _ctx: ActivityContext,
        a: i64,
        (b, c): (i64, i64),
        d: String,
    ) -> Result<String, ActivityError> {
        Ok(format!("{}{d}", a + b + c))
    }

    #[governed_activity]
    #[activity]
    pub async fn attribute_order_does_not_matter(
        _ctx: ActivityContext,
        x: Option<String>,
    ) -> Result<Option<String>, ActivityError> {
        let y = x.map(|s| s.to_uppercase());
        Ok(y)
    }
}

fn main() {
    let _ = Acts::no_args;
    let _ = Acts::place;
}
