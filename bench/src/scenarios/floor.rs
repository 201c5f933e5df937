//! The machine's own loopback floor, without tokio, HTTP or any SDK code: a 300-byte echo over
//! TCP between two plain threads pinned to different cores, hot and after a pause.
//!
//! On a VM an idle core may be halted by the host, and waking it costs far more than the
//! round trip itself. The Core round trips of the other scenarios cross cores too (the dev
//! Core is another process), so this is what they cannot beat on this machine.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::measure::{Latency, nanos};

/// The echo's round trips.
#[derive(Debug, Clone, Copy)]
pub struct LoopbackFloor {
    /// The two cores (echo, caller).
    pub cores: (usize, usize),
    /// Back to back.
    pub hot: Latency,
    /// Each after the pause.
    pub after_pause: Latency,
}

const MESSAGE: usize = 300;

/// `hot_calls` back-to-back round trips, then `idle_calls` each after `pause`; `None` on a
/// machine with fewer than two usable cores.
pub async fn run(
    hot_calls: u32,
    idle_calls: u32,
    pause: Duration,
) -> Result<Option<LoopbackFloor>> {
    tokio::task::spawn_blocking(move || measure(hot_calls, idle_calls, pause))
        .await
        .context("loopback floor thread")?
}

fn measure(hot_calls: u32, idle_calls: u32, pause: Duration) -> Result<Option<LoopbackFloor>> {
    let cpus = allowed_cpus()?;
    let [echo_cpu, caller_cpu, ..] = cpus[..] else {
        return Ok(None);
    };
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> Result<()> {
        pin_current_thread(echo_cpu)?;
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            stream.write_all(&buf[..n])?;
        }
    });
    let caller = std::thread::spawn(move || -> Result<(Latency, Latency)> {
        let mut stream = TcpStream::connect(addr)?;
        pin_current_thread(caller_cpu)?;
        stream.set_nodelay(true)?;
        let message = [b'x'; MESSAGE];
        let mut buf = [0u8; MESSAGE];
        let mut round_trip = || -> Result<u64> {
            let t = Instant::now();
            stream.write_all(&message)?;
            stream.read_exact(&mut buf)?;
            Ok(nanos(t.elapsed()))
        };
        for _ in 0..hot_calls.min(1_000) {
            round_trip()?;
        }
        let hot = (0..hot_calls)
            .map(|_| round_trip())
            .collect::<Result<_>>()?;
        let mut after_pause = Vec::new();
        for _ in 0..idle_calls {
            std::thread::sleep(pause);
            after_pause.push(round_trip()?);
        }
        Ok((Latency::of(hot), Latency::of(after_pause)))
    });
    // Once the caller has connected, its stream is closed when it ends, and so the echo ends;
    // if it could not connect, the echo thread is left waiting in `accept`.
    let (hot, after_pause) = caller
        .join()
        .map_err(|_| anyhow::anyhow!("the caller thread panicked"))??;
    echo.join()
        .map_err(|_| anyhow::anyhow!("the echo thread panicked"))??;
    Ok(Some(LoopbackFloor {
        cores: (echo_cpu, caller_cpu),
        hot,
        after_pause,
    }))
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Result<Vec<usize>> {
    // SAFETY: `cpu_set_t` is plain data, zero is a valid (empty) set, and the size passed is
    // the size of the set written to.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(std::io::Error::last_os_error()).context("sched_getaffinity");
        }
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect())
    }
}

fn pin_current_thread(cpu: usize) -> Result<()> {
    // SAFETY: as above; pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("pinning a thread to CPU {cpu}"));
        }
    }
    Ok(())
}
