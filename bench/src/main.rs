//! `openbox-bench`: runs every benchmark in one go and writes `BENCHMARKS.md`.
//!
//! Normally started by `cargo xtask bench`, which builds in release mode, runs the criterion
//! benchmark of `#[traced]`, starts the Temporal dev server and then this binary. Options:
//!
//! * `--out <file>` — where to write the report (default `BENCHMARKS.md` in the workspace);
//! * `--criterion <dir>` — criterion's output directory (default `target/criterion`);
//! * `--command <text>` — the command to name in the report;
//! * `--quick` — small sizes, for checking that the suite runs (figures are not meaningful;
//!   written to `target/BENCHMARKS-quick.md` unless `--out` is given).
//!
//! With `--quick`, `OPENBOX_BENCH_DEFERRED_CALLS=<n>` sets the iterations of section 7's
//! deferred-mode probes (default 200 GETs and 100 commands): a quick side-by-side of those
//! figures, or a long loop to profile (`perf record -p <pid>` while it runs);
//! `OPENBOX_BENCH_DRAIN_EVENTS=<n>` the backlog of section 8 (default 200; 2 000 in a full
//! run). `--only-drain` runs section 8 alone and prints its figures (no report written).
//! `RUST_LOG` (e.g. `openbox=debug`) prints the SDK's logs to standard error.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use openbox::{GovernanceOptions, Governor, HookCompletion, OpenBoxPlugin};
use openbox_bench::fixtures::{BenchActivities, Chain, ChainActivity, Probe};
use openbox_bench::measure::Machine;
use openbox_bench::report::{Report, TracedOutside, with_hand_notes};
use openbox_bench::scenarios::activity_overhead::{self, Variant};
use openbox_bench::scenarios::one_round_trip::{self, CORE_DELAY};
use openbox_bench::scenarios::{drain, idle, memory, outage, probes, throughput};
use openbox_bench::setup::{self, DevCoreProcess, Temporal};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

struct Args {
    out: PathBuf,
    criterion: PathBuf,
    command: String,
    quick: bool,
    /// Only section 8, printed (for working on late delivery).
    only_drain: bool,
}

fn parse_args() -> Result<Args> {
    let root = openbox_devserver::project_root(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
    let mut args = Args {
        out: root.join("BENCHMARKS.md"),
        criterion: root.join("target").join("criterion"),
        command: "cargo xtask bench".into(),
        quick: false,
        only_drain: false,
    };
    let mut out = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = Some(it.next().context("--out needs a path")?.into()),
            "--criterion" => args.criterion = it.next().context("--criterion needs a path")?.into(),
            "--command" => args.command = it.next().context("--command needs a text")?,
            "--quick" => args.quick = true,
            "--only-drain" => args.only_drain = true,
            other => anyhow::bail!("unknown argument {other:?} (see the top of bench/src/main.rs)"),
        }
    }
    args.out = match out {
        Some(path) => path,
        None if args.quick => root.join("target").join("BENCHMARKS-quick.md"),
        None => args.out,
    };
    Ok(args)
}

/// Sizes of the run.
struct Sizes {
    chain: u32,
    runs: usize,
    probe_calls: u32,
    idle_calls: u32,
    throughput_secs: u64,
    memory: memory::Plan,
    outage_calls: usize,
    one_round_trip: one_round_trip::Plan,
    drain_events: usize,
    drain_live_calls: usize,
}

/// Iterations of section 7's deferred-mode probe in a `--quick` run.
const DEFERRED_CALLS_ENV: &str = "OPENBOX_BENCH_DEFERRED_CALLS";
/// Events of section 8's backlog in a `--quick` run.
const DRAIN_EVENTS_ENV: &str = "OPENBOX_BENCH_DRAIN_EVENTS";

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            let deferred_calls: Option<u32> = std::env::var(DEFERRED_CALLS_ENV)
                .ok()
                .and_then(|v| v.parse().ok());
            Sizes {
                chain: 20,
                runs: 2,
                probe_calls: 200,
                idle_calls: 10,
                throughput_secs: 1,
                outage_calls: 1_000,
                drain_events: std::env::var(DRAIN_EVENTS_ENV)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(200),
                drain_live_calls: 1_000,
                one_round_trip: one_round_trip::Plan {
                    calls: deferred_calls.unwrap_or(200),
                    process_calls: deferred_calls.unwrap_or(100),
                    slow_calls: 10,
                    chain: 10,
                    runs: 1,
                },
                memory: memory::Plan {
                    per_workflow: 10,
                    first_batch: 4,
                    workflows: 20,
                    checkpoint_every: 8,
                    in_flight: 8,
                    traced_calls: 5,
                },
            }
        } else {
            Sizes {
                chain: 200,
                runs: 7,
                probe_calls: 10_000,
                idle_calls: 100,
                throughput_secs: 3,
                outage_calls: 100_000,
                drain_events: 2_000,
                drain_live_calls: 4_000,
                one_round_trip: one_round_trip::Plan {
                    calls: 10_000,
                    process_calls: 2_000,
                    slow_calls: 300,
                    chain: 100,
                    runs: 3,
                },
                // 1 000 workflows × 100 activities × 10 evaluations = 1 000 000 evaluations;
                // the first point is after 10 workflows: 10 000 evaluations.
                memory: memory::Plan {
                    per_workflow: 100,
                    first_batch: 10,
                    workflows: 1_000,
                    checkpoint_every: 110,
                    in_flight: 48,
                    traced_calls: 5,
                },
            }
        }
    }
}

fn worker_options(task_queue: &str, plugin: Option<OpenBoxPlugin>) -> Result<WorkerOptions> {
    let b = WorkerOptions::new(task_queue)
        .max_cached_workflows(200)
        .register_activities(BenchActivities)
        .register_workflow::<Chain>()?
        .register_workflow::<Probe>()?;
    Ok(match plugin {
        Some(p) => b.worker_plugin(p).build(),
        None => b.build(),
    })
}

/// The pause before each idle round trip: about what a chain's activity waits for Temporal.
const IDLE_BETWEEN_ACTIVITIES: Duration = Duration::from_millis(50);

/// Exact live-heap figures for the memory scenario.
#[global_allocator]
static ALLOCATOR: openbox_heap_counter::CountingAllocator = openbox_heap_counter::CountingAllocator;

/// One memory series on a worker and a Temporal dev server of its own, governed by `plugin` or
/// plain without one. Both series start from the same state: a dev server slows down as its
/// history grows (in a full run, several times over), and a worker's map of task tokens grows
/// by one entry per activity whatever it runs (temporalio-sdk 1.1.1, see the report), so a
/// series on the server and worker of the earlier sections would not compare with the other.
async fn memory_on_a_fresh_server(
    runtime: &Runtime,
    task_queue: &str,
    plugin: Option<OpenBoxPlugin>,
    tag: &str,
    plan: &memory::Plan,
) -> Result<memory::Memory> {
    // Hand what earlier sections freed back to the system, so that this series' RSS starts
    // from what is alive. (glibc only; its heap keeps freed memory otherwise.)
    // SAFETY: malloc_trim has no preconditions; it only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
    let temporal = tokio::task::spawn_blocking(Temporal::start_own)
        .await
        .context("starting a Temporal dev server")??;
    eprintln!("bench: fresh Temporal at {}", temporal.address);
    let client = temporal.client().await?;
    let governor = plugin.as_ref().map(|p| p.governor().clone());
    let mut worker = Worker::new(runtime, client.clone(), worker_options(task_queue, plugin)?)
        .context("worker builds")?;
    let shutdown = worker.shutdown_handle();
    let (run, series) = tokio::join!(worker.run(), async {
        let series = memory::run(&client, task_queue, governor.as_ref(), tag, plan).await;
        shutdown();
        series
    });
    run.context("memory worker run")?;
    series
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let sizes = Sizes::new(args.quick);
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    if args.only_drain {
        let drain = drain::run(sizes.drain_events, sizes.drain_live_calls).await?;
        println!("{drain:#?}");
        return Ok(());
    }
    let machine = Machine::detect();
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let tag = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();

    let core = DevCoreProcess::start()?;
    eprintln!("bench: dev Core at {}", core.url());
    let slow_core = DevCoreProcess::start_delayed(CORE_DELAY)?;
    eprintln!(
        "bench: dev Core delaying every answer by {} ms at {}",
        CORE_DELAY.as_millis(),
        slow_core.url()
    );

    eprintln!("bench: 4. Core client throughput");
    let throughput = throughput::run(
        &core,
        &[1, 8, 64],
        Duration::from_secs(sizes.throughput_secs),
    )
    .await?;

    eprintln!("bench: 6. Core outage and the circuit breaker");
    let outage = outage::run(sizes.outage_calls).await?;
    eprintln!("  {outage:?}");

    eprintln!("bench: 8. late delivery of the spool");
    let drain = drain::run(sizes.drain_events, sizes.drain_live_calls).await?;
    eprintln!("  {drain:?}");

    let temporal = Temporal::get()?;
    eprintln!("bench: Temporal at {}", temporal.address);
    let client = temporal.client().await?;
    let runtime = Runtime::from_current_tokio(Default::default()).context("Temporal runtime")?;
    let http_url = setup::http_server().await?;

    let plugin = OpenBoxPlugin::builder()
        .config(core.config())
        .build()
        .await?;
    let plugin_governor = plugin.governor().clone();
    let macro_governor = Governor::connect(core.config(), GovernanceOptions::default()).await?;
    anyhow::ensure!(
        macro_governor.install_global(),
        "a global governor is installed already"
    );

    let queue = |name: &str| format!("bench-{name}-{tag}");
    let variants = vec![
        Variant {
            name: "plain",
            task_queue: queue("plain"),
            kind: ChainActivity::Noop,
            governor: None,
        },
        Variant {
            name: "plugin",
            task_queue: queue("plugin"),
            kind: ChainActivity::Noop,
            governor: Some(plugin_governor),
        },
        Variant {
            name: "macro",
            task_queue: queue("macro"),
            kind: ChainActivity::NoopAnnotated,
            governor: Some(macro_governor.clone()),
        },
    ];
    // Section 7: hooks in the deferred mode, against this dev Core and against the slow one
    // (there the chain's workflow events are off: only the activity's own evaluations count).
    let deferred_plugin = OpenBoxPlugin::builder()
        .config(core.config())
        .options(|o| o.hook_completion(HookCompletion::Deferred))
        .build()
        .await?;
    let slow_plugin = OpenBoxPlugin::builder()
        .config(slow_core.config())
        .options(|o| {
            o.hook_completion(HookCompletion::Deferred)
                .skip_workflow_types(["BenchChain"])
        })
        .build()
        .await?;
    let slow_chain = vec![
        Variant {
            name: "plain",
            task_queue: variants[0].task_queue.clone(),
            kind: ChainActivity::Noop,
            governor: None,
        },
        Variant {
            name: "governed, Core +20 ms",
            task_queue: queue("slow"),
            kind: ChainActivity::Noop,
            governor: Some(slow_plugin.governor().clone()),
        },
    ];
    let deferred_queue = queue("deferred");
    let mut workers = Vec::new();
    for (task_queue, p) in [
        (&variants[0].task_queue, None),
        (&variants[1].task_queue, Some(plugin)),
        (&variants[2].task_queue, None),
        (&deferred_queue, Some(deferred_plugin)),
        (&slow_chain[1].task_queue, Some(slow_plugin)),
    ] {
        workers.push(
            Worker::new(&runtime, client.clone(), worker_options(task_queue, p)?)
                .context("worker builds")?,
        );
    }
    let shutdowns: Vec<_> = workers.iter().map(Worker::shutdown_handle).collect();

    let scenario = async {
        let result = async {
            eprintln!("bench: 1. activity overhead");
            let overhead =
                activity_overhead::run(&client, &variants, sizes.chain, sizes.runs, &tag).await?;
            eprintln!("bench: 1b. Core round trips after idling");
            let idle = idle::run(
                &core,
                sizes.idle_calls,
                sizes.probe_calls,
                IDLE_BETWEEN_ACTIVITIES,
            )
            .await?;
            eprintln!("  {idle:?}");
            let governed_queue = &variants[1].task_queue;
            eprintln!("bench: 2. HTTP hook latency");
            let http = probes::http(
                &client,
                governed_queue,
                &tag,
                &http_url,
                core.url(),
                sizes.probe_calls,
            )
            .await?;
            eprintln!("  {http:?}");
            eprintln!("bench: 3. #[traced] inside a governed activity");
            let traced_inside =
                probes::traced(&client, governed_queue, &tag, core.url(), sizes.probe_calls)
                    .await?;
            eprintln!("  {traced_inside:?}");
            eprintln!("bench: 7. one Core round trip per hook (deferred completion)");
            let one_round_trip = one_round_trip::run(
                &client,
                &one_round_trip::Queues {
                    deferred: &deferred_queue,
                    slow: &slow_chain[1].task_queue,
                    chain: &slow_chain,
                },
                &http_url,
                [core.url(), slow_core.url()],
                sizes.one_round_trip,
                &tag,
            )
            .await?;
            eprintln!("bench: 5. memory (governed, then plain)");
            let memory_plugin = OpenBoxPlugin::builder()
                .config(core.config())
                .build()
                .await?;
            let governed_memory = memory_on_a_fresh_server(
                &runtime,
                &queue("memory-governed"),
                Some(memory_plugin),
                &format!("{tag}-g"),
                &sizes.memory,
            )
            .await?;
            let plain_memory = memory_on_a_fresh_server(
                &runtime,
                &queue("memory-plain"),
                None,
                &format!("{tag}-p"),
                &sizes.memory,
            )
            .await?;
            let memory = [governed_memory, plain_memory];
            anyhow::Ok((overhead, idle, http, traced_inside, memory, one_round_trip))
        }
        .await;
        for s in &shutdowns {
            s();
        }
        result
    };
    let (runs, result) = tokio::join!(
        futures::future::join_all(workers.iter_mut().map(Worker::run)),
        scenario
    );
    for r in runs {
        r.context("worker run")?;
    }
    let (overhead, idle, http, traced_inside, memory, one_round_trip) = result?;

    let traced_outside = TracedOutside::read(&args.criterion);
    if traced_outside.is_none() {
        eprintln!(
            "bench: no criterion results under {}",
            args.criterion.display()
        );
    }
    let report = Report {
        machine,
        date,
        command: args.command,
        overhead,
        idle,
        http,
        traced_outside,
        traced_inside,
        throughput,
        memory,
        outage,
        one_round_trip,
        drain,
    };
    // A full run replaces the file but keeps its notes written by hand.
    let previous = std::fs::read_to_string(&args.out).ok();
    let text = with_hand_notes(report.markdown(), previous.as_deref());
    std::fs::write(&args.out, &text).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("bench: wrote {}", args.out.display());
    println!("{text}");
    Ok(())
}
