//! The benchmark suite's summary: each bench adds its headline figures as
//! rows of one markdown table (`scripts/bench.sh` prints it at the end).
#![allow(dead_code)]

use std::io::Write;

/// Appends `| what | measured | target | verdict |` to `$BENCH_SUMMARY`
/// (when set) and prints it.
pub fn row(what: &str, measured: &str, target: &str, met: Option<bool>) {
    let verdict = match met {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "",
    };
    let line = format!("| {what} | {measured} | {target} | {verdict} |");
    println!("summary: {line}");
    if let Ok(path) = std::env::var("BENCH_SUMMARY") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("BENCH_SUMMARY is writable");
        writeln!(f, "{line}").expect("write the summary");
    }
}

/// Resident memory of a process now, and its peak so far, in MiB (Linux).
pub fn rss_mib(pid: u32) -> (f64, f64) {
    let [rss, hwm] = status_mib(pid, ["VmRSS:", "VmHWM:"]);
    (rss, hwm)
}

/// A process's resident memory by kind, in MiB: anonymous (heaps,
/// stacks) and file-backed or shared (mapped code, SQLite's WAL index).
pub fn rss_kinds_mib(pid: u32) -> (f64, f64) {
    let [anon, file, shared] = status_mib(pid, ["RssAnon:", "RssFile:", "RssShmem:"]);
    (anon, file + shared)
}

/// Fields of `/proc/PID/status` given in kB, in MiB (0 if missing).
fn status_mib<const N: usize>(pid: u32, names: [&str; N]) -> [f64; N] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    names.map(|name| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    })
}

/// A process's `/proc/PID/stat` fields after the command name (which may
/// hold spaces): index 1 is the parent, 11 to 14 utime, stime, cutime and
/// cstime in clock ticks (100 per second on Linux).
fn stat_fields(pid: &str) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    rest.split_whitespace().map(str::to_string).collect()
}

/// Seconds of the clock-tick fields `from..from + n`.
fn ticks_secs(fields: &[String], from: usize, n: usize) -> f64 {
    let ticks: f64 = fields
        .iter()
        .skip(from)
        .take(n)
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// CPU time (user + system) a process has used so far, in seconds (Linux;
/// `"self"` for this one).
pub fn cpu_secs(pid: &str) -> f64 {
    ticks_secs(&stat_fields(pid), 11, 2)
}

/// The same for a process and its children: those it waited for and
/// those running now (a Postgres cluster: the postmaster, its backends,
/// autovacuum, the checkpointer…).
pub fn tree_cpu_secs(pid: &str) -> f64 {
    let mut total = ticks_secs(&stat_fields(pid), 11, 4);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.bytes().all(|b| b.is_ascii_digit()) {
            let f = stat_fields(&name);
            if f.get(1).map(String::as_str) == Some(pid) {
                total += ticks_secs(&f, 11, 2);
            }
        }
    }
    total
}

/// Samples a process's resident memory every 10 ms until stopped; returns
/// the highest value seen, in MiB.
pub struct PeakRss {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<f64>,
}

impl PeakRss {
    pub fn start(pid: u32) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak: f64 = 0.0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_mib(pid).0);
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            peak.max(rss_mib(pid).0)
        });
        Self { stop, handle }
    }

    pub fn stop(self) -> f64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap_or(0.0)
    }
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The least-squares line through evenly spaced `samples`: its values at
/// the first and the last sample.
pub fn trend(samples: &[f64]) -> (f64, f64) {
    let n = samples.len() as f64;
    if samples.len() < 2 {
        let v = samples.first().copied().unwrap_or(0.0);
        return (v, v);
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = samples.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in samples.iter().enumerate() {
        let dx = i as f64 - mean_x;
        sxy += dx * (y - mean_y);
        sxx += dx * dx;
    }
    let slope = sxy / sxx;
    (mean_y - slope * mean_x, mean_y + slope * mean_x)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Opens `n` live-update streams as `http` and reads them in the
/// background; each counter holds the `batch` events one stream received.
pub async fn open_streams(
    http: &reqwest::Client,
    base: &str,
    n: usize,
) -> (Vec<tokio::task::JoinHandle<()>>, Streams) {
    let counters: Streams = std::sync::Arc::new((0..n).map(|_| Default::default()).collect());
    let mut readers = Vec::new();
    for i in 0..n {
        let r = http.get(format!("{base}/events")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let counters = counters.clone();
        readers.push(tokio::spawn(async move {
            use futures_util::StreamExt;
            let mut body = r.bytes_stream();
            while let Some(Ok(chunk)) = body.next().await {
                let n = chunk.windows(12).filter(|w| w == b"event: batch").count();
                counters[i].fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    (readers, counters)
}

pub type Streams = std::sync::Arc<Vec<std::sync::atomic::AtomicU64>>;

/// Events received so far: (all streams together, fewest by one stream,
/// most by one stream).
pub fn received(s: &Streams) -> (u64, u64, u64) {
    let v: Vec<u64> = s
        .iter()
        .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    (
        v.iter().sum(),
        v.iter().copied().min().unwrap_or(0),
        v.iter().copied().max().unwrap_or(0),
    )
}

pub fn reset(s: &Streams) {
    for c in s.iter() {
        c.store(0, std::sync::atomic::Ordering::Relaxed);
    }
}
