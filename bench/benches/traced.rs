//! `#[traced]` outside a governed activity (governance off): the cost of the attribute itself.
//! Each traced function is measured next to the same function unwrapped.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use openbox_bench::fixtures::{plain_step, plain_step_async, traced_step, traced_step_async};

fn traced(c: &mut Criterion) {
    let mut g = c.benchmark_group("traced");
    g.bench_function("plain_sync", |b| b.iter(|| plain_step(black_box(7))));
    g.bench_function("traced_sync", |b| b.iter(|| traced_step(black_box(7))));
    g.bench_function("plain_async", |b| {
        b.iter(|| futures::executor::block_on(plain_step_async(black_box(7))))
    });
    g.bench_function("traced_async", |b| {
        b.iter(|| futures::executor::block_on(traced_step_async(black_box(7))))
    });
    g.finish();
}

criterion_group!(benches, traced);
criterion_main!(benches);
