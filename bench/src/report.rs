//! `BENCHMARKS.md`: every figure next to its baseline from the same run, the targets, the
//! machine, the date and the command.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::fixtures::ProbeReport;
use crate::measure::{Latency, Machine, Spread};
use crate::scenarios::activity_overhead::Overhead;
use crate::scenarios::idle::IdleRoundTrips;
use crate::scenarios::memory::Memory;
use crate::scenarios::one_round_trip::{self, OneRoundTrip};
use crate::scenarios::throughput::Throughput;

/// A criterion estimate: mean with its 95 % confidence interval, in ns.
#[derive(Debug, Clone, Copy)]
pub struct Estimate {
    /// Mean.
    pub mean: f64,
    /// Lower bound of the interval.
    pub low: f64,
    /// Upper bound of the interval.
    pub high: f64,
}

/// Reads `<dir>/<group>/<bench>/new/estimates.json`.
pub fn criterion_estimate(dir: &Path, group: &str, bench: &str) -> Option<Estimate> {
    let path = dir
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let mean = &json["mean"];
    Some(Estimate {
        mean: mean["point_estimate"].as_f64()?,
        low: mean["confidence_interval"]["lower_bound"].as_f64()?,
        high: mean["confidence_interval"]["upper_bound"].as_f64()?,
    })
}

/// The `#[traced]` criterion results (governance off).
#[derive(Debug, Clone, Copy)]
pub struct TracedOutside {
    /// Plain sync function.
    pub plain_sync: Estimate,
    /// The same, `#[traced]`.
    pub traced_sync: Estimate,
    /// Plain async function (polled once by a trivial executor).
    pub plain_async: Estimate,
    /// The same, `#[traced]`.
    pub traced_async: Estimate,
}

impl TracedOutside {
    /// Reads the four estimates of the `traced` group.
    pub fn read(dir: &Path) -> Option<Self> {
        Some(TracedOutside {
            plain_sync: criterion_estimate(dir, "traced", "plain_sync")?,
            traced_sync: criterion_estimate(dir, "traced", "traced_sync")?,
            plain_async: criterion_estimate(dir, "traced", "plain_async")?,
            traced_async: criterion_estimate(dir, "traced", "traced_async")?,
        })
    }
}

/// Everything one run measured.
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// When (RFC 3339).
    pub date: String,
    /// The command that produced it.
    pub command: String,
    /// 1.
    pub overhead: Overhead,
    /// 1, beside it: Core round trips after a pause like the one before each chain activity.
    pub idle: IdleRoundTrips,
    /// 2.
    pub http: ProbeReport,
    /// 3, governance off (criterion).
    pub traced_outside: Option<TracedOutside>,
    /// 3, inside a governed activity.
    pub traced_inside: ProbeReport,
    /// 4.
    pub throughput: Throughput,
    /// 5.
    /// The memory series: governed first, then plain.
    pub memory: [Memory; 2],
    /// 6.
    pub outage: crate::scenarios::outage::Outage,
    /// 7.
    pub one_round_trip: OneRoundTrip,
    /// 8.
    pub drain: crate::scenarios::drain::Drain,
}

/// The heading of the part of `BENCHMARKS.md` written by hand; a new run keeps it.
pub const HAND_NOTES_HEADING: &str = "## Notes added by hand";

/// `generated`, followed by the hand-written notes of `previous` (the file being replaced) if it
/// has any: a run must not erase what its readers were told about earlier runs.
pub fn with_hand_notes(mut generated: String, previous: Option<&str>) -> String {
    let notes = previous.and_then(|p| {
        p.match_indices(HAND_NOTES_HEADING)
            .find(|(i, _)| *i == 0 || p[..*i].ends_with('\n'))
            .map(|(i, _)| &p[i..])
    });
    if let Some(notes) = notes {
        if !generated.ends_with("\n\n") {
            generated.push('\n');
        }
        generated.push_str(notes);
    }
    generated
}

/// Live heap kept by governance: the governed series' heap growth beyond the plain one's, KiB.
/// The heap, not the RSS: part of what the first series freed stays in the process's RSS
/// (the allocator keeps it, trimmed or not), so the second series' RSS growth does not compare
/// with the first's.
fn heap_kept_by_governance_kib(gov: &Memory, plain: &Memory) -> i64 {
    gov.heap_growth_kib() - plain.heap_growth_kib()
}

/// A table of latencies in µs: one row per `(name, latency)`.
fn latency_table(s: &mut String, rows: &[(&str, Latency)]) {
    let _ = writeln!(s, "| | p50 | p99 | mean |");
    let _ = writeln!(s, "|---|---|---|---|");
    for (name, l) in rows {
        let _ = writeln!(
            s,
            "| {name} | {:.1} µs | {:.1} µs | {:.1} µs |",
            us(l.p50),
            us(l.p99),
            us(l.mean)
        );
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

/// Targets of the SDK's own time, as multiples of the raw round trips it cannot avoid.
const ACTIVITY_ROUND_TRIP_RATIO: f64 = 1.3;
/// A deferred-mode governed GET, over the unwrapped one, in raw round trips.
const DEFERRED_GET_ROUND_TRIPS: f64 = 1.3;
/// Section 7: the tower layer's overhead per call, at most this many times the reqwest
/// middleware's on the same request.
const TOWER_OVER_MIDDLEWARE: f64 = 1.3;

fn met(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

fn spread_ms(s: Spread) -> String {
    format!("{:.3} ± {:.3} ms", s.mean, s.sd)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

impl Report {
    fn outage_section(&self, s: &mut String) {
        let o = &self.outage;
        let _ = writeln!(s, "## 6. Core outage: the circuit breaker\n");
        let _ = writeln!(
            s,
            "The dev Core delays every answer by {} s; the client's timeout is {} s and its breaker opens \
             after 5 consecutive failures (the defaults). Each evaluation before it opened waited out the \
             timeout; once open, no call is made and `fail_open` proceeds at once.\n",
            crate::scenarios::outage::CORE_DELAY.as_secs(),
            crate::scenarios::outage::TIMEOUT.as_secs()
        );
        let _ = writeln!(s, "| Phase | Evaluations | Cost per evaluation |");
        let _ = writeln!(s, "|---|---|---|");
        let _ = writeln!(
            s,
            "| until the breaker opened | {} | {:.0} ms mean |",
            o.before_ms.len(),
            mean(&o.before_ms)
        );
        let _ = writeln!(
            s,
            "| breaker open | {} | {:.1} µs mean, {:.0} µs max; {} reached Core |\n",
            o.after_calls, o.after_mean_us, o.after_max_us, o.reached_core_while_open
        );
    }

    /// HTTP: governed − plain at p50, per stage (two stages per request), in µs.
    fn http_overhead_per_stage_us(&self) -> f64 {
        (us(self.http.governed.p50) - us(self.http.plain.p50)) / 2.0
    }

    /// `#[traced]` inside: the two Core round trips a call cannot beat, in µs, and what they
    /// are: the call's own two requests posted raw when measured, else twice the smallest.
    fn traced_inside_round_trips_us(&self) -> (f64, &'static str) {
        match &self.traced_inside.core_pair {
            Some(pair) => (us(pair.p50), "its two Core requests posted raw"),
            None => (
                2.0 * us(self.traced_inside.core_rtt.p50),
                "2 × dev Core round trip",
            ),
        }
    }

    /// `#[traced]` inside: what remains of a call after its two raw Core round trips, in µs.
    fn traced_inside_extra_us(&self) -> f64 {
        us(self.traced_inside.governed.p50)
            - us(self.traced_inside.plain.p50)
            - self.traced_inside_round_trips_us().0
    }

    /// The markdown text.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let m = &self.machine;
        let _ = writeln!(s, "# Benchmarks\n");
        let _ = writeln!(
            s,
            "Produced by `{}` on {} — {} logical cores, {}, Linux {}. Release build; the \
             Temporal dev server (`temporal server start-dev`) and the dev Core (`openbox-dev \
             serve`, its own process, no event-log file) run on the same machine. Every figure \
             stands next to its baseline **measured in the same run**; no figure here is \
             asserted by a test.\n",
            self.command, self.date, m.cores, m.cpu, m.kernel
        );
        self.summary(&mut s);
        self.overhead_section(&mut s);
        self.http_section(&mut s);
        self.traced_section(&mut s);
        self.throughput_section(&mut s);
        self.memory_section(&mut s);
        self.outage_section(&mut s);
        self.one_round_trip_section(&mut s);
        self.drain_section(&mut s);
        self.dominates_section(&mut s);
        s
    }

    /// What a governed activity's two lifecycle evaluations cannot beat, in ms: two raw round
    /// trips after the pause each chain activity follows (section 1).
    fn activity_round_trips_ms(&self) -> f64 {
        2.0 * us(self.idle.raw.p50) / 1e3
    }

    fn summary(&self, s: &mut String) {
        let _ = writeln!(s, "## Summary\n");
        let _ = writeln!(
            s,
            "| Benchmark | Figure | Baseline, same run | Ratio | Target | Met |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        let o = &self.overhead;
        let two_round_trips = self.activity_round_trips_ms();
        for v in o.variants.iter().skip(1) {
            let own = Spread::of(&v.self_ms);
            let diff = o.difference(v);
            let base = Spread::of(&o.baseline().per_activity_ms);
            let _ = writeln!(
                s,
                "| Activity overhead, {} — SDK's own time | {:.3} ms/activity | 2 raw Core round trips after a 50 ms pause {two_round_trips:.3} ms | {:.2}× | ≤ {ACTIVITY_ROUND_TRIP_RATIO}× | {} |",
                v.name,
                own.mean,
                own.mean / two_round_trips.max(1e-9),
                met(own.mean <= ACTIVITY_ROUND_TRIP_RATIO * two_round_trips)
            );
            let _ = writeln!(
                s,
                "| Activity overhead, {} — end to end | +{:.3} ms/activity (sd {:.3}) | plain {:.3} ms/activity | {:.2}× | consistent with own time | {} |",
                v.name,
                diff.mean,
                diff.sd,
                base.mean,
                Spread::of(&v.per_activity_ms).mean / base.mean.max(1e-9),
                met((diff.mean - own.mean).abs() <= (2.0 * diff.sd).max(0.05))
            );
        }
        let stage = self.http_overhead_per_stage_us();
        let rtt = us(self.http.core_rtt.p50);
        let _ = writeln!(
            s,
            "| HTTP hook, p50 overhead per stage | {stage:.1} µs | dev Core round trip p50 {rtt:.1} µs | {:.2}× | ≤ 2× | {} |",
            stage / rtt.max(1e-9),
            met(stage <= 2.0 * rtt)
        );
        if let Some(t) = &self.traced_outside {
            for (kind, plain, traced) in [
                ("sync", &t.plain_sync, &t.traced_sync),
                ("async", &t.plain_async, &t.traced_async),
            ] {
                let d = traced.mean - plain.mean;
                let _ = writeln!(
                    s,
                    "| `#[traced]` outside an activity ({kind}) | +{d:.1} ns/call | plain {:.1} ns | {:.1}× | ≤ 50 ns | {} |",
                    plain.mean,
                    traced.mean / plain.mean.max(1e-9),
                    met(d <= 50.0)
                );
            }
        }
        let extra = self.traced_inside_extra_us();
        let (round_trips, baseline) = self.traced_inside_round_trips_us();
        let _ = writeln!(
            s,
            "| `#[traced]` inside a governed activity, p50 | {:.1} µs/call | {baseline} {round_trips:.1} µs | {extra:+.1} µs | ≤ 2 round trips + 10 µs | {} |",
            us(self.traced_inside.governed.p50),
            met(extra <= 10.0)
        );
        self.one_round_trip_summary(s);
        if let (Some(c), Some(a)) = (
            self.throughput.client.last(),
            self.throughput.core_alone.last(),
        ) {
            let _ = writeln!(
                s,
                "| Core client throughput, concurrency {} | {:.0} evaluations/s | dev Core alone {:.0}/s | {:.2} | ≥ 20 000/s | {} |",
                c.concurrency,
                c.per_second,
                a.per_second,
                c.per_second / a.per_second.max(1e-9),
                met(c.per_second >= 20_000.0)
            );
        }
        let [gov, plain] = &self.memory;
        if let (Some(first), Some(last)) = (gov.points.first(), gov.points.last()) {
            let kept_kib = heap_kept_by_governance_kib(gov, plain);
            let percent = kept_kib as f64 / (first.rss_kib.max(1) as f64) * 100.0;
            let _ = writeln!(
                s,
                "| Memory kept by governance after {} vs {} hook evaluations ({} activities): governed heap growth − plain heap growth, against the RSS | {:+.1} MiB | governed RSS at the first point {:.1} MiB | {:+.1} % | flat within 5 % | {} |",
                last.hook_evaluations,
                first.hook_evaluations,
                last.activities,
                kept_kib as f64 / 1024.0,
                first.rss_kib as f64 / 1024.0,
                percent,
                met(percent.abs() <= 5.0)
            );
            let _ = writeln!(
                s,
                "| Live heap kept per activity by each worker over the same series, governed vs plain | {:.0} bytes | {:.0} bytes | — | (information: temporalio-sdk 1.1.1 keeps an entry per activity task, section 5) | — |",
                gov.heap_bytes_per_activity(),
                plain.heap_bytes_per_activity()
            );
        }
        let _ = writeln!(s);
    }

    fn overhead_section(&self, s: &mut String) {
        let o = &self.overhead;
        let out = &self.outage;
        let _ = writeln!(
            s,
            "| Core not answering, breaker open — cost per governed evaluation | {:.1} µs | before it opened: {:.0} ms | {:.0}× less | ≤ 1 ms | {} |",
            out.after_mean_us,
            mean(&out.before_ms),
            mean(&out.before_ms) * 1e3 / out.after_mean_us.max(1e-9),
            met(out.after_mean_us <= 1000.0 && out.reached_core_while_open == 0)
        );
        let d = &self.drain;
        let _ = writeln!(
            s,
            "| Late delivery of a {}-event backlog, defaults (4 in flight, 200/s) | {:.0} events/s | one at a time at 20/s: {:.1} events/s | {:.1}× | drains ≥ 2× as fast as 10 % failures of the peak load fill it | {} |",
            d.concurrent.events,
            d.concurrent.per_second(),
            d.sequential.per_second(),
            d.concurrent.per_second() / d.sequential.per_second().max(1e-9),
            met(d.concurrent.per_second() >= d.concurrent.rate as f64 * 0.5)
        );
        let extra = us(d.live_draining.p50) - us(d.live_idle.p50);
        let _ = writeln!(
            s,
            "| A live evaluation while that backlog drains, p50 | {:.0} µs | with no backlog: {:.0} µs | {:+.0} µs | grows by ≤ one round trip ({:.0} µs) | {} |",
            us(d.live_draining.p50),
            us(d.live_idle.p50),
            extra,
            us(d.live_idle.p50),
            met(extra <= us(d.live_idle.p50))
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "## 1. Activity overhead\n");
        let _ = writeln!(
            s,
            "One workflow of N = {} sequential no-op activities per variant, {} measured rounds after a \
             warm-up; each round runs every variant once, in rotated order, against the same server. \
             *End to end* is workflow start to result, divided by N. *SDK's own time* is the \
             governor's own clock (`GovernanceStats::governance_nanos`: Core calls, serialization, \
             redaction), divided by N. Variants: **plugin** — `OpenBoxPlugin` on a plain activity \
             (it also governs the workflow: WorkflowStarted/Completed through the carrier, \
             amortized over N); **macro** — `#[governed_activity]` with a global `Governor` and no \
             plugin.\n",
            o.n, o.runs
        );
        let _ = writeln!(
            s,
            "| Variant | End to end per activity | − plain, paired per round | SDK's own time per activity | Runs (ms/activity) |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|");
        for (i, v) in o.variants.iter().enumerate() {
            let runs: Vec<String> = v
                .per_activity_ms
                .iter()
                .map(|x| format!("{x:.3}"))
                .collect();
            let (diff, own) = if i == 0 {
                ("—".to_owned(), "—".to_owned())
            } else {
                (
                    spread_ms(o.difference(v)),
                    spread_ms(Spread::of(&v.self_ms)),
                )
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                v.name,
                spread_ms(Spread::of(&v.per_activity_ms)),
                diff,
                own,
                runs.join(", ")
            );
        }
        let _ = writeln!(
            s,
            "\nReference: the Python SDK 1.1.1 adds 5.0 ms per no-op activity on this kind of machine; \
             the floor of two keep-alive loopback round trips is about 0.1 ms.\n"
        );
        let i = &self.idle;
        let _ = writeln!(
            s,
            "Loopback after idling, measured right after these rounds: each activity of a chain \
             follows ~50 ms of waiting for Temporal, so its evaluations meet a dev Core and a \
             connection that have gone quiet. {} calls of each kind, each after {} ms of sleep, \
             alternately: a raw keep-alive POST p50 {:.1} µs (p99 {:.1} µs); \
             `CoreClient::evaluate` of an ActivityStarted body p50 {:.1} µs (p99 {:.1} µs). \
             The hot-loop round trip of section 2 is {:.1} µs: on this machine a call after a \
             pause costs several hot round trips, with or without SDK code.\n",
            i.raw.n,
            i.idle.as_millis(),
            us(i.raw.p50),
            us(i.raw.p99),
            us(i.client.p50),
            us(i.client.p99),
            us(self.http.core_rtt.p50)
        );
        if let Some(f) = &i.floor {
            let _ = writeln!(
                s,
                "The machine's own floor, without tokio, HTTP or SDK code: a 300-byte TCP echo \
                 between two plain threads pinned to cores {} and {} takes p50 {:.1} µs back to \
                 back ({} round trips) and p50 {:.1} µs (p99 {:.1} µs) after the same pause \
                 ({} round trips). Every Core call crosses cores the same way: the dev Core is \
                 another process.\n",
                f.cores.0,
                f.cores.1,
                us(f.hot.p50),
                f.hot.n,
                us(f.after_pause.p50),
                us(f.after_pause.p99),
                f.after_pause.n
            );
        }
    }

    fn http_section(&self, s: &mut String) {
        let h = &self.http;
        let _ = writeln!(s, "## 2. HTTP hook latency\n");
        let _ = writeln!(
            s,
            "Inside one governed activity, {} iterations of: a GET to a local server through \
             `reqwest` unwrapped, the same GET through `OpenBoxMiddleware` (two Core evaluations: \
             `started`, `completed`), and a raw keep-alive POST to the dev Core's evaluate \
             endpoint (the round trip each stage cannot beat).\n",
            h.plain.n
        );
        latency_table(
            s,
            &[
                ("GET, unwrapped", h.plain),
                ("GET, governed", h.governed),
                ("dev Core round trip", h.core_rtt),
            ],
        );
        let stage = self.http_overhead_per_stage_us();
        let _ = writeln!(
            s,
            "\nOverhead per stage at p50: ({:.1} − {:.1}) / 2 = **{stage:.1} µs**, {:.2}× the round trip \
             (target ≤ 2×). At p99: {:.1} µs per stage.",
            us(h.governed.p50),
            us(h.plain.p50),
            stage / us(h.core_rtt.p50).max(1e-9),
            (us(h.governed.p99) - us(h.plain.p99)) / 2.0
        );
        match &h.core_pair {
            Some(pair) => {
                let _ = writeln!(
                    s,
                    " The GET's own two requests (its `started` and `completed` bodies as the dev \
                     Core logged them), posted raw back to back in the same loop: p50 {:.1} µs; the \
                     governed GET costs {:+.1} µs beyond them and the unwrapped GET.\n",
                    us(pair.p50),
                    us(h.governed.p50) - us(h.plain.p50) - us(pair.p50)
                );
            }
            None => {
                let _ = writeln!(s);
            }
        }
    }

    fn traced_section(&self, s: &mut String) {
        let _ = writeln!(s, "## 3. `#[traced]`\n");
        match &self.traced_outside {
            Some(t) => {
                let _ = writeln!(
                    s,
                    "Outside a governed activity (criterion, `cargo bench -p openbox-bench --bench traced`; \
                     no `tracing` subscriber installed, mean and 95 % interval):\n"
                );
                let _ = writeln!(s, "| Function | Plain | `#[traced]` | Overhead |");
                let _ = writeln!(s, "|---|---|---|---|");
                for (name, p, t) in [
                    ("sync", t.plain_sync, t.traced_sync),
                    ("async", t.plain_async, t.traced_async),
                ] {
                    let _ = writeln!(
                        s,
                        "| {name} | {:.2} ns [{:.2}, {:.2}] | {:.2} ns [{:.2}, {:.2}] | {:+.2} ns |",
                        p.mean,
                        p.low,
                        p.high,
                        t.mean,
                        t.low,
                        t.high,
                        t.mean - p.mean
                    );
                }
                let _ = writeln!(s);
            }
            None => {
                let _ = writeln!(
                    s,
                    "The criterion results were not found: run `cargo bench -p openbox-bench --bench traced` first.\n"
                );
            }
        }
        let t = &self.traced_inside;
        let _ = write!(
            s,
            "Inside a governed activity ({} calls of each, alternating, with a raw dev Core round trip \
             after each pair): plain p50 {:.2} µs; traced p50 **{:.1} µs** (p99 {:.1} µs); \
             smallest round trip p50 {:.1} µs, twice that {:.1} µs.",
            t.plain.n,
            us(t.plain.p50),
            us(t.governed.p50),
            us(t.governed.p99),
            us(t.core_rtt.p50),
            2.0 * us(t.core_rtt.p50),
        );
        if let Some(pair) = &t.core_pair {
            let _ = write!(
                s,
                " A traced call's two Core requests are larger than the smallest one (they carry \
                 the activity's identity and input and the operation's span), and the dev Core \
                 does more with them; so each iteration also posts the two bodies of one traced \
                 call, as the dev Core logged them, raw and back to back: p50 {:.1} µs (p99 \
                 {:.1} µs). That pair is what a traced call cannot beat.",
                us(pair.p50),
                us(pair.p99)
            );
        }
        let (round_trips, baseline) = self.traced_inside_round_trips_us();
        let _ = writeln!(
            s,
            "\n\nBeyond {baseline} ({round_trips:.1} µs): **{:+.1} µs** (target ≤ 10 µs).\n",
            self.traced_inside_extra_us()
        );
    }

    fn throughput_section(&self, s: &mut String) {
        let t = &self.throughput;
        let _ = writeln!(s, "## 4. Core client throughput\n");
        let _ = writeln!(
            s,
            "`CoreClient::evaluate` of an ActivityStarted body from N concurrent tasks for {:.0} s per \
             level, against the dev Core; then the dev Core alone, loaded by a raw HTTP/1.1 \
             generator on N keep-alive connections (no SDK code). CPU time per evaluation is read \
             from `/proc` for both processes: on 2 cores, client and dev Core share the machine.\n",
            t.seconds
        );
        let _ = writeln!(
            s,
            "| Concurrency | CoreClient evaluations/s | client CPU/eval | dev Core CPU/eval | dev Core alone/s | generator CPU/eval | dev Core CPU/eval (alone) | ratio |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for (c, a) in t.client.iter().zip(&t.core_alone) {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.1} µs | {:.1} µs | {:.0} | {:.1} µs | {:.1} µs | {:.2} |",
                c.concurrency,
                c.per_second,
                c.client_cpu_us,
                c.core_cpu_us,
                a.per_second,
                a.client_cpu_us,
                a.core_cpu_us,
                c.per_second / a.per_second.max(1e-9)
            );
        }
        let _ = writeln!(s);
    }

    fn memory_section(&self, s: &mut String) {
        let [gov, plain] = &self.memory;
        let _ = writeln!(s, "## 5. Memory\n");
        let _ = writeln!(
            s,
            "The same workload on a governed worker (plugin) and then on a plain worker, in one \
             process, each worker new and against a fresh Temporal dev server of its own (a dev \
             server slows down as its history grows, and a worker's task-token map grows with \
             every activity it has run, see below): workflows of sequential activities, many \
             workflows at once, each activity calling a `#[traced]` function {} times ({} hook evaluations per activity when \
             governed, none when plain). At each checkpoint: the live heap (exact, counted by the \
             bench's global allocator) and the RSS (`VmRSS`). The dev Core runs in its own process \
             and is not counted. {:.0} s governed, {:.0} s plain.\n",
            gov.traced_calls,
            gov.traced_calls * 2,
            gov.seconds,
            plain.seconds
        );
        let _ = writeln!(
            s,
            "| Activities | Hook evaluations (governed) | Heap governed | Heap plain | RSS governed | RSS plain |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        for (g, p) in gov.points.iter().zip(&plain.points) {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB |",
                g.activities,
                g.hook_evaluations,
                g.heap_kib as f64 / 1024.0,
                p.heap_kib as f64 / 1024.0,
                g.rss_kib as f64 / 1024.0,
                p.rss_kib as f64 / 1024.0
            );
        }
        let _ = writeln!(
            s,
            "\nHeap kept per activity from the first to the last point: governed {:.0} bytes, plain \
             {:.0} bytes. At the end of the governed series: {} open activity scopes, {} \
             intercepted attempts, {} pending approvals.\n",
            gov.heap_bytes_per_activity(),
            plain.heap_bytes_per_activity(),
            gov.open_scopes,
            gov.intercepted_attempts,
            gov.pending_approvals
        );
        let _ = writeln!(
            s,
            "Neither worker is flat, and for the same reason: temporalio-sdk 1.1.1 inserts every \
             activity task's token and a new cancellation token into the worker's \
             `task_tokens_to_cancels` map (`src/lib.rs`, lines 1514–1517) and never removes them \
             (the latest release on crates.io). In a heaptrack profile of this scenario those two \
             allocation sites and the map's table are the only ones whose live size grows with \
             the number of activities, on the plain worker as on the governed one. What \
             governance itself keeps is therefore the governed live-heap growth minus the plain \
             one, which the summary judges against the RSS at the first point. The heap, because \
             the RSS of the second series starts with part of what the first one freed (even \
             after `malloc_trim`, called before each series).\n"
        );
    }

    /// Section 7: the deferred GET over the unwrapped one, in µs at p50.
    fn deferred_get_extra_us(&self) -> f64 {
        let h = &self.one_round_trip.http;
        us(h.governed.p50) - us(h.plain.p50)
    }

    /// Section 7: a governed run of `true` over a plain one, and its `started` request posted
    /// raw, in µs at p50.
    fn deferred_command_us(&self) -> (f64, f64) {
        let p = &self.one_round_trip.process;
        let started = p.core_started.unwrap_or(p.core_rtt);
        (us(p.governed.p50) - us(p.plain.p50), us(started.p50))
    }

    /// Section 7: the tower layer's overhead (governed − unwrapped hyper-util GET) and the
    /// middleware's (governed − unwrapped reqwest GET), in µs at p50.
    fn tower_overheads_us(&self) -> (f64, f64) {
        let t = &self.one_round_trip.tower;
        let [plain, governed] = t.middleware.unwrap_or_default();
        (
            us(t.governed.p50) - us(t.plain.p50),
            us(governed.p50) - us(plain.p50),
        )
    }

    /// Section 7, slow Core: the raw round trip to it at p50, in ms (the delay as the dev Core
    /// delivers it, plus the loopback).
    fn slow_round_trip_ms(&self) -> f64 {
        us(self.one_round_trip.slow_http.core_rtt.p50) / 1e3
    }

    /// Section 7, slow Core: per governed no-op activity, the SDK's own time and governed −
    /// plain end to end, in ms; and what the SDK's time may be: its two delayed round trips
    /// plus 1 ms.
    fn slow_activity_ms(&self) -> (Spread, Spread, f64) {
        let chain = &self.one_round_trip.slow_chain;
        let (own, diff) = chain.variants.get(1).map_or_else(
            || (Spread::of(&[]), Spread::of(&[])),
            |v| (Spread::of(&v.self_ms), chain.difference(v)),
        );
        (own, diff, 2.0 * self.slow_round_trip_ms() + 1.0)
    }

    /// Section 7: the one round trip a deferred GET waits for, in µs at p50, and what it is:
    /// the GET's own `started` request posted raw when measured, else the smallest request.
    fn deferred_get_round_trip_us(&self) -> (f64, &'static str) {
        let h = &self.one_round_trip.http;
        match &h.core_started {
            Some(started) => (us(started.p50), "its `started` request posted raw"),
            None => (us(h.core_rtt.p50), "dev Core round trip"),
        }
    }

    fn one_round_trip_summary(&self, s: &mut String) {
        let r = &self.one_round_trip;
        let extra = self.deferred_get_extra_us();
        let rtt = us(r.http.core_rtt.p50);
        let (round_trip, what) = self.deferred_get_round_trip_us();
        let _ = writeln!(
            s,
            "| HTTP hook, deferred completion: governed GET − unwrapped GET, p50 | {extra:.1} µs | {what} p50 {round_trip:.1} µs (smallest request {rtt:.1} µs: {:.2}×) | {:.2}× | ≤ {DEFERRED_GET_ROUND_TRIPS}× | {} |",
            extra / rtt.max(1e-9),
            extra / round_trip.max(1e-9),
            met(extra <= DEFERRED_GET_ROUND_TRIPS * round_trip)
        );
        let (cmd_extra, cmd_round_trip) = self.deferred_command_us();
        let _ = writeln!(
            s,
            "| Command, deferred completion: governed `true` `output()` − plain, p50 | {cmd_extra:.1} µs | its `started` request posted raw p50 {cmd_round_trip:.1} µs | {:.2}× | ≤ {DEFERRED_GET_ROUND_TRIPS}× | {} |",
            cmd_extra / cmd_round_trip.max(1e-9),
            met(cmd_extra <= DEFERRED_GET_ROUND_TRIPS * cmd_round_trip)
        );
        let (tower, middleware) = self.tower_overheads_us();
        let _ = writeln!(
            s,
            "| Tower layer, deferred completion: governed − unwrapped hyper-util GET, p50 | {tower:.1} µs | reqwest middleware on the same GET p50 {middleware:.1} µs | {:.2}× | ≤ {TOWER_OVER_MIDDLEWARE}× | {} |",
            tower / middleware.max(1e-9),
            met(tower <= TOWER_OVER_MIDDLEWARE * middleware)
        );
        let delay_ms = one_round_trip::CORE_DELAY.as_secs_f64() * 1e3;
        let get_ms = us(r.slow_http.governed.p50) / 1e3;
        let rtt_ms = self.slow_round_trip_ms();
        let _ = writeln!(
            s,
            "| Core answering in +{delay_ms:.0} ms: governed GET (deferred), p50 | {get_ms:.2} ms | raw round trip to that Core p50 {rtt_ms:.2} ms (unwrapped GET {:.3} ms) | {:+.2} ms | ≤ 1 round trip + 1 ms ({:.0} ms at exactly {delay_ms:.0} ms) | {} |",
            us(r.slow_http.plain.p50) / 1e3,
            get_ms - rtt_ms,
            delay_ms + 1.0,
            met(get_ms <= rtt_ms + 1.0)
        );
        let (own, diff, limit) = self.slow_activity_ms();
        let _ = writeln!(
            s,
            "| Core answering in +{delay_ms:.0} ms: governed no-op activity — SDK's own time | {:.2} ms/activity (end to end over plain {:+.2}, sd {:.2}) | 2 raw round trips to that Core {:.2} ms | {:+.2} ms | ≤ 2 round trips + 1 ms ({:.0} ms at exactly {delay_ms:.0} ms) | {} |",
            own.mean,
            diff.mean,
            diff.sd,
            2.0 * rtt_ms,
            own.mean - 2.0 * rtt_ms,
            2.0 * delay_ms + 1.0,
            met(own.mean <= limit)
        );
    }

    fn drain_section(&self, s: &mut String) {
        let d = &self.drain;
        let _ = writeln!(s, "## 8. Late delivery of the spool\n");
        let _ = writeln!(
            s,
            "The dev Core answers 503 while {} events are spooled (fail_open, the breaker opens as it \
             would), then answers again; the time is from its first answer to an empty spool. The \
             events belong to 50 runs, whose order is kept. `one at a time, 20/s` is the pacing late \
             delivery had before it ran side by side. Then live evaluations are timed while the \
             defaults drain the same backlog, and again with none.\n",
            d.concurrent.events
        );
        let _ = writeln!(
            s,
            "| Late delivery | In flight | Rate limit | Drained in | Events/s |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|");
        for (name, r) in [
            ("one at a time", &d.sequential),
            ("defaults", &d.concurrent),
        ] {
            let _ = writeln!(
                s,
                "| {name} | {} | {}/s | {:.2} s | {:.1} |",
                r.concurrency,
                r.rate,
                r.seconds,
                r.per_second()
            );
        }
        let _ = writeln!(s, "\n| Live evaluation | n | p50 | p99 |");
        let _ = writeln!(s, "|---|---|---|---|");
        for (name, l) in [
            ("no backlog", &d.live_idle),
            ("while draining", &d.live_draining),
        ] {
            let _ = writeln!(
                s,
                "| {name} | {} | {:.0} µs | {:.0} µs |",
                l.n,
                us(l.p50),
                us(l.p99)
            );
        }
        let _ = writeln!(s);
    }

    fn one_round_trip_section(&self, s: &mut String) {
        let r = &self.one_round_trip;
        let _ = writeln!(
            s,
            "## 7. One Core round trip per hook: deferred completion
"
        );
        let _ = writeln!(
            s,
            "Workers whose plugin runs hooks with `HookCompletion::Deferred`: a governed operation \
             returns when it finished, its `completed` evaluation runs alongside in the activity's \
             own task, and the activity waits for every pending one before ActivityCompleted. Same \
             probe as section 2 ({} iterations of unwrapped GET, governed GET, raw round trip) on \
             such a worker, against the same dev Core. The deferred evaluation runs while the \
             activity awaits its next operation: here the smallest request, measured right after \
             the governed GET, which therefore also meets it at the dev Core and on the CPU:\n",
            r.http.plain.n
        );
        let mut rows = vec![
            ("GET, unwrapped", r.http.plain),
            ("GET, governed (deferred)", r.http.governed),
            ("dev Core round trip, smallest request", r.http.core_rtt),
        ];
        if let Some(started) = r.http.core_started {
            rows.push(("its `started` request posted raw", started));
        }
        rows.push(("GET, governed (waiting, section 2)", self.http.governed));
        latency_table(s, &rows);
        let extra = self.deferred_get_extra_us();
        let (round_trip, what) = self.deferred_get_round_trip_us();
        let _ = writeln!(
            s,
            "\nGoverned over unwrapped at p50: **{extra:.1} µs**, {:.2}× {what} ({round_trip:.1} µs: \
             the GET's own request, with its span, headers and the activity's identity, which the \
             dev Core also matches against its rules; target ≤ {DEFERRED_GET_ROUND_TRIPS}×) and \
             {:.2}× the smallest request; waiting for `completed` (section 2) it is {:.1} µs.\n",
            extra / round_trip.max(1e-9),
            extra / us(r.http.core_rtt.p50).max(1e-9),
            us(self.http.governed.p50) - us(self.http.plain.p50)
        );
        let p = &r.process;
        let (cmd_extra, cmd_round_trip) = self.deferred_command_us();
        let _ = writeln!(
            s,
            "A command on the same worker, {} iterations of `Command::new(\"true\").output()` through \
             `tokio::process` and through `openbox::process`, and the governed one's `started` \
             request posted raw:\n",
            p.plain.n
        );
        let mut rows = vec![
            ("`true`, plain", p.plain),
            ("`true`, governed (deferred)", p.governed),
        ];
        if let Some(started) = p.core_started {
            rows.push(("its `started` request posted raw", started));
        }
        latency_table(s, &rows);
        let _ = writeln!(
            s,
            "\nGoverned over plain at p50: **{cmd_extra:.1} µs**, {:.2}× its `started` request \
             ({cmd_round_trip:.1} µs; target ≤ {DEFERRED_GET_ROUND_TRIPS}×).\n",
            cmd_extra / cmd_round_trip.max(1e-9)
        );
        let t = &r.tower;
        let [reqwest_plain, reqwest_governed] = t.middleware.unwrap_or_default();
        let _ = writeln!(
            s,
            "The tower layer on the same worker, {} iterations of the same GET through hyper-util's \
             client unwrapped and under `OpenBoxLayer`, then through reqwest unwrapped and under \
             the middleware, alternating:\n",
            t.plain.n
        );
        latency_table(
            s,
            &[
                ("GET, hyper-util, unwrapped", t.plain),
                ("GET, hyper-util + tower layer (deferred)", t.governed),
                ("GET, reqwest, unwrapped", reqwest_plain),
                ("GET, reqwest + middleware (deferred)", reqwest_governed),
            ],
        );
        let (tower, middleware) = self.tower_overheads_us();
        let _ = writeln!(
            s,
            "\nOverhead at p50: tower layer **{tower:.1} µs**, middleware {middleware:.1} µs: \
             {:.2}× (target ≤ {TOWER_OVER_MIDDLEWARE}×).\n",
            tower / middleware.max(1e-9)
        );
        let delay_ms = one_round_trip::CORE_DELAY.as_secs_f64() * 1e3;
        let _ = writeln!(
            s,
            "A second dev Core process delays every governance answer by {delay_ms:.0} ms (`openbox-dev \
             serve --fault-delay {delay_ms:.0}ms`; the targets are judged against the raw round trip \
             to it measured here, which is that delay as delivered plus the loopback). On a \
             deferred-mode worker governed by it, {} iterations of the same probe: unwrapped GET \
             p50 {:.3} ms, governed GET p50 **{:.2} ms** (p99 {:.2} ms), raw round trip p50 {:.2} ms.\n",
            r.slow_http.plain.n,
            us(r.slow_http.plain.p50) / 1e3,
            us(r.slow_http.governed.p50) / 1e3,
            us(r.slow_http.governed.p99) / 1e3,
            us(r.slow_http.core_rtt.p50) / 1e3
        );
        let c = &r.slow_chain;
        let (own, diff, limit) = self.slow_activity_ms();
        let _ = writeln!(
            s,
            "Chains of N = {} sequential no-op activities, {} measured rounds after a warm-up, \
             rotated as in section 1: a plain worker and that worker (workflow events off for the \
             chain, so only the activity's ActivityStarted and ActivityCompleted count; both \
             verdicts are needed, one before the body and one before the result is returned).\n",
            c.n, c.runs
        );
        let _ = writeln!(
            s,
            "| Variant | End to end per activity | − plain, paired per round | SDK's own time per activity |"
        );
        let _ = writeln!(s, "|---|---|---|---|");
        for (i, v) in c.variants.iter().enumerate() {
            let (d, own) = if i == 0 {
                ("—".to_owned(), "—".to_owned())
            } else {
                (
                    spread_ms(c.difference(v)),
                    spread_ms(Spread::of(&v.self_ms)),
                )
            };
            let _ = writeln!(
                s,
                "| {} | {} | {d} | {own} |",
                v.name,
                spread_ms(Spread::of(&v.per_activity_ms))
            );
        }
        let _ = writeln!(
            s,
            "\nThe SDK's own time per activity, **{:.2} ms**, against two raw round trips to that Core \
             plus 1 ms = {limit:.2} ms. End to end the governed activity takes {:+.2} ms more than \
             the plain one: a plain activity's own turnaround in Temporal (section 1) is not \
             added to the SDK's time but partly overlaps it, so end to end is shown, not judged.\n",
            own.mean, diff.mean
        );
    }

    fn dominates_section(&self, s: &mut String) {
        let _ = writeln!(s, "## What dominates what is left\n");
        let hot_ms = self.http.core_rtt.p50 as f64 / 1e6;
        let idle_raw_ms = self.idle.raw.p50 as f64 / 1e6;
        for v in self.overhead.variants.iter().skip(1) {
            let own = Spread::of(&v.self_ms).mean;
            let _ = writeln!(
                s,
                "* **{}**: {:.3} ms of SDK time per activity, {:.3} ms per lifecycle evaluation. \
                 A hot-loop raw round trip takes {:.3} ms (p50, section 2) and a raw round trip \
                 after a 50 ms pause {:.3} ms (p50, section 1): each evaluation costs {:.1} hot \
                 round trips and {:.1} after-pause ones: the wake-up of a quiet dev Core and \
                 connection, not the SDK's CPU (section 4: tens of µs per evaluation), sets it.",
                v.name,
                own,
                own / 2.0,
                hot_ms,
                idle_raw_ms,
                own / 2.0 / hot_ms.max(1e-9),
                own / 2.0 / idle_raw_ms.max(1e-9)
            );
        }
        if let Some(f) = &self.idle.floor {
            let _ = writeln!(
                s,
                "* **The machine**: a plain-thread echo across two cores costs {:.3} ms after a \
                 pause and {:.3} ms back to back (section 1). An activity's `started` \
                 evaluation meets a quiet Core and its `completed` one follows at once, so one \
                 echo of each kind, {:.3} ms, is what the activity's two evaluations cannot go below on this \
                 machine whatever the SDK does.",
                us(f.after_pause.p50) / 1e3,
                us(f.hot.p50) / 1e3,
                (us(f.after_pause.p50) + us(f.hot.p50)) / 1e3
            );
        }
        if let Some(c) = self.throughput.client.last() {
            let _ = writeln!(
                s,
                "* **Throughput** at concurrency {}: the client spends {:.1} µs and the dev Core {:.1} µs \
                 of CPU per evaluation; with both on {} cores, the sum bounds the rate near {:.0}/s.",
                c.concurrency,
                c.client_cpu_us,
                c.core_cpu_us,
                self.machine.cores,
                self.machine.cores as f64 * 1e6 / (c.client_cpu_us + c.core_cpu_us).max(1e-9)
            );
        }
        let _ = writeln!(
            s,
            "* **End to end**, an activity costs what the Temporal round trips cost (server, \
             polling, history); governance adds its two Core calls on top, inline, because a \
             verdict must be known before the body runs and before the result is returned."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::memory::Point;

    #[test]
    fn a_new_run_keeps_the_notes_written_by_hand() {
        let previous =
            "# Benchmarks\n\nold table\n\n## Notes added by hand (not produced)\n\nkeep me\n";
        let text = with_hand_notes("# Benchmarks\n\nnew table\n".into(), Some(previous));
        assert_eq!(
            text,
            "# Benchmarks\n\nnew table\n\n## Notes added by hand (not produced)\n\nkeep me\n"
        );
    }

    #[test]
    fn without_notes_the_generated_text_is_all() {
        let generated = "# Benchmarks\n\nnew table\n".to_owned();
        assert_eq!(with_hand_notes(generated.clone(), None), generated);
        // The heading only counts at the start of a line.
        let quoted = "text that mentions ## Notes added by hand inline\n";
        assert_eq!(with_hand_notes(generated.clone(), Some(quoted)), generated);
    }

    fn series(heap_kib: [u64; 2]) -> Memory {
        let point = |activities, heap_kib| Point {
            activities,
            hook_evaluations: activities * 10,
            rss_kib: 80_000,
            heap_kib,
        };
        Memory {
            points: vec![point(1_000, heap_kib[0]), point(100_000, heap_kib[1])],
            traced_calls: 5,
            open_scopes: 0,
            intercepted_attempts: 0,
            pending_approvals: 0,
            seconds: 1.0,
        }
    }

    #[test]
    fn governance_is_charged_only_the_heap_growth_beyond_the_plain_worker() {
        assert_eq!(
            heap_kept_by_governance_kib(&series([5_000, 36_000]), &series([4_000, 34_500])),
            500
        );
        assert_eq!(
            heap_kept_by_governance_kib(&series([5_000, 25_000]), &series([4_000, 34_000])),
            -10_000
        );
    }
}
