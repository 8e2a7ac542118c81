//! `make bench-webhook`, the load side: sends AdmissionReviews to a running `kibaship-webhook serve` over HTTPS
//! from a process of its own, checks every answer, and prints one JSON object with the request count, errors,
//! throughput and latency percentiles (exact: nearest rank over the sorted samples).
//!
//! Three ways to send (reviews are taken from the file in turn):
//! - closed loop (the default): `--concurrency` senders, each sending its next review as soon as the previous one is
//!   answered, for `--duration` seconds after `--warmup` seconds that are not counted. Gives the throughput
//!   ceiling; the latency is that of a saturated server.
//! - open loop (`--rate R`): R reviews per second on a fixed schedule (released every millisecond), whatever the
//!   answers do; each latency runs from the moment its review was sent.
//! - burst (`--burst`): every review of the file once, all released at the same instant; each latency runs from
//!   that instant.
//!
//! Connections are opened and used once (`GET /healthz`) before anything is timed. An answer counts as an error
//! unless it is HTTP 200 with the review's uid and, by default, `allowed: true` (`--expect`).
//!
//! Beside the figures it reports what it cost on this side: its CPU time and how long its threads waited for a CPU
//! while runnable (Linux `schedstat`; `client_cpu_ms`, `client_wait_ms`), and in the open loop how late its
//! millisecond ticks woke up (`tick_lag_ms`): the machine's scheduling noise as the load generator sees it.
//!
//! Usage: `admission_load --url https://127.0.0.1:PORT/validate --ca ca.pem --reviews reviews.jsonl [OPTIONS]`
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark tool: a panic is a failed run

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use hyper::body::Bytes;
use serde_json::{Value, json};
use tokio::time::Instant;

/// Sends AdmissionReviews to a webhook and prints throughput and latency as JSON.
#[derive(Parser, Debug)]
struct Args {
    /// Endpoint, e.g. https://127.0.0.1:8443/validate.
    #[arg(long)]
    url: reqwest::Url,
    /// CA certificate (PEM) the webhook's serving certificate chains to; nothing else is trusted.
    #[arg(long)]
    ca: PathBuf,
    /// One AdmissionReview (JSON) per line.
    #[arg(long)]
    reviews: PathBuf,
    /// HTTP version (2 is what kube-apiserver uses).
    #[arg(long, value_enum, default_value_t = Http::Two)]
    http: Http,
    /// Clients, each with its own connection pool (HTTP/2: one connection each).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Closed loop: senders in parallel.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before the measurement (not counted).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Open loop at this many reviews per second.
    #[arg(long, conflicts_with = "burst")]
    rate: Option<f64>,
    /// Every review of the file once, all at the same instant.
    #[arg(long)]
    burst: bool,
    /// The answer expected of every review.
    #[arg(long, value_enum, default_value_t = Expect::Allowed)]
    expect: Expect,
    /// Name of the run, copied into the output.
    #[arg(long, default_value = "")]
    label: String,
    /// Runtime worker threads of this process.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Open loop: reviews in flight beyond which the schedule's sends are skipped (and counted).
    #[arg(long, default_value_t = 20_000)]
    max_in_flight: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Http {
    #[value(name = "1")]
    One,
    #[value(name = "2")]
    Two,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Expect {
    Allowed,
    Denied,
    Any,
}

/// One review as sent: its bytes and the uid its answer must carry.
struct Review {
    body: Bytes,
    uid: String,
}

/// What one request came to.
struct Sample {
    /// Nanoseconds from the send (or the burst's release) to the whole answer.
    latency_ns: u64,
    /// When the answer was complete.
    done: Instant,
    error: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.connections == 0 || args.concurrency == 0 || args.threads == 0 {
        bail!("--connections, --concurrency and --threads must be at least 1");
    }
    let reviews = Arc::new(read_reviews(&args.reviews)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(run(&args, reviews))?;
    println!("{report}");
    Ok(())
}

fn read_reviews(path: &PathBuf) -> anyhow::Result<Vec<Review>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut reviews = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let value: Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
        let Some(uid) = value["request"]["uid"].as_str() else {
            bail!("{}:{}: no request.uid", path.display(), n + 1);
        };
        reviews.push(Review {
            uid: uid.to_string(),
            body: Bytes::from(line.to_string()),
        });
    }
    if reviews.is_empty() {
        bail!("{}: no reviews", path.display());
    }
    Ok(reviews)
}

fn client(args: &Args, ca: &reqwest::Certificate) -> anyhow::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(None)
        .timeout(Duration::from_secs(30));
    let builder = match args.http {
        Http::One => builder.http1_only(),
        Http::Two => builder.http2_prior_knowledge(),
    };
    builder.build().context("building the HTTP client")
}

/// Opens `per_client` connections on each client (HTTP/1.1: one per sender; HTTP/2: one carries all) and
/// checks the protocol spoken.
async fn open_connections(
    clients: &[reqwest::Client],
    health: &reqwest::Url,
    http: Http,
    per_client: usize,
) -> anyhow::Result<()> {
    let want = match http {
        Http::One => reqwest::Version::HTTP_11,
        Http::Two => reqwest::Version::HTTP_2,
    };
    for client in clients {
        // One request first, so that HTTP/2's concurrent requests below share its connection.
        let response = client
            .get(health.clone())
            .send()
            .await
            .with_context(|| format!("GET {health}"))?;
        if response.version() != want {
            bail!(
                "the webhook answered {:?}, not {want:?}",
                response.version()
            );
        }
        let more = (1..per_client).map(|_| client.get(health.clone()).send());
        for response in futures::future::join_all(more).await {
            response.with_context(|| format!("GET {health}"))?;
        }
    }
    Ok(())
}

/// Sends `review` and checks its answer; the time runs until the whole body is in.
async fn send(
    client: &reqwest::Client,
    url: &reqwest::Url,
    review: &Review,
    expect: Expect,
    since: Instant,
) -> Sample {
    let result = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(review.body.clone())
        .send()
        .await;
    let answer = match result {
        Ok(response) => {
            let status = response.status();
            response.bytes().await.map(|body| (status, body))
        }
        Err(e) => Err(e),
    };
    let done = Instant::now();
    let latency_ns = u64::try_from(done.duration_since(since).as_nanos()).unwrap_or(u64::MAX);
    let error = match answer {
        Ok((status, body)) => check(status, &body, review, expect),
        Err(e) => Some(format!("request failed: {e}")),
    };
    Sample {
        latency_ns,
        done,
        error,
    }
}

fn check(
    status: reqwest::StatusCode,
    body: &[u8],
    review: &Review,
    expect: Expect,
) -> Option<String> {
    let shown = || String::from_utf8_lossy(body.get(..300).unwrap_or(body)).into_owned();
    if status != reqwest::StatusCode::OK {
        return Some(format!("HTTP {status}: {}", shown()));
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Some(format!("not JSON: {}", shown()));
    };
    let response = &value["response"];
    if response["uid"].as_str() != Some(review.uid.as_str()) {
        return Some(format!(
            "uid {} answered for {}",
            response["uid"], review.uid
        ));
    }
    let allowed = response["allowed"].as_bool();
    match (expect, allowed) {
        (Expect::Any, Some(_)) | (Expect::Allowed, Some(true)) | (Expect::Denied, Some(false)) => {
            None
        }
        _ => Some(format!(
            "expected {expect:?}, got allowed={} message={}",
            response["allowed"], response["status"]["message"]
        )),
    }
}

async fn run(args: &Args, reviews: Arc<Vec<Review>>) -> anyhow::Result<Value> {
    let ca_pem =
        std::fs::read(&args.ca).with_context(|| format!("reading {}", args.ca.display()))?;
    let ca =
        reqwest::Certificate::from_pem(&ca_pem).context("the CA file is not a PEM certificate")?;
    let clients = (0..args.connections)
        .map(|_| client(args, &ca))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let health = args.url.join("/healthz").context("the URL has no base")?;
    let per_client = match args.http {
        Http::One if args.burst => reviews.len().div_ceil(args.connections),
        Http::One if args.rate.is_none() => args.concurrency.div_ceil(args.connections),
        _ => 1,
    };
    open_connections(&clients, &health, args.http, per_client).await?;

    let before = process_sched_ns();
    let (mode, samples, window, skipped, lags) = if args.burst {
        let (samples, window) = burst(args, &clients, &reviews).await;
        ("burst", samples, window, 0, Vec::new())
    } else if let Some(rate) = args.rate {
        let (samples, window, skipped, lags) = open_loop(args, rate, &clients, &reviews).await?;
        ("open", samples, window, skipped, lags)
    } else {
        let (samples, window) = closed_loop(args, &clients, &reviews).await;
        ("closed", samples, window, 0, Vec::new())
    };
    let sched = match (before, process_sched_ns()) {
        (Some(a), Some(b)) => Some((
            b.0.saturating_sub(a.0) as f64 / 1e6,
            b.1.saturating_sub(a.1) as f64 / 1e6,
        )),
        _ => None,
    };
    let mut report = report(args, mode, &samples, window, skipped, sched);
    if !lags.is_empty() {
        report["tick_lag_ms"] = json!({
            "p50": round3(percentile_ms(&lags, 50.0)),
            "p99": round3(percentile_ms(&lags, 99.0)),
            "p999": round3(percentile_ms(&lags, 99.9)),
            "max": round3(percentile_ms(&lags, 100.0)),
        });
    }
    Ok(report)
}

/// Nanoseconds the threads of this process have run on a CPU, and waited on a run queue while runnable (Linux
/// `/proc/self/task/*/schedstat`).
fn process_sched_ns() -> Option<(u64, u64)> {
    let (mut run, mut wait) = (0u64, 0u64);
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        let mut fields = stat.split_whitespace().map(str::parse::<u64>);
        run += fields.next()?.ok()?;
        wait += fields.next()?.ok()?;
    }
    Some((run, wait))
}

/// Every review once, released together; the window is from the release to the last answer.
async fn burst(
    args: &Args,
    clients: &[reqwest::Client],
    reviews: &Arc<Vec<Review>>,
) -> (Vec<Sample>, Duration) {
    let (release, gate) = tokio::sync::watch::channel(None::<Instant>);
    let mut tasks = Vec::new();
    for index in 0..reviews.len() {
        let client = clients[index % clients.len()].clone();
        let reviews = Arc::clone(reviews);
        let url = args.url.clone();
        let expect = args.expect;
        let mut gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let since = *gate.wait_for(Option::is_some).await.expect("released");
            send(&client, &url, &reviews[index], expect, since.expect("set")).await
        }));
    }
    // Every sender is parked on the gate before it opens.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    release.send(Some(start)).expect("senders wait");
    let samples: Vec<Sample> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|s| s.expect("sender"))
        .collect();
    let last = samples.iter().map(|s| s.done).max().unwrap_or(start);
    (samples, last.duration_since(start))
}

/// `concurrency` senders back to back; only requests sent and answered inside the measured window count.
async fn closed_loop(
    args: &Args,
    clients: &[reqwest::Client],
    reviews: &Arc<Vec<Review>>,
) -> (Vec<Sample>, Duration) {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let measured_from = start + Duration::from_secs_f64(args.warmup);
    let window = Duration::from_secs_f64(args.duration);
    let end = measured_from + window;
    let mut tasks = Vec::new();
    for sender in 0..args.concurrency {
        let client = clients[sender % clients.len()].clone();
        let reviews = Arc::clone(reviews);
        let next = Arc::clone(&next);
        let url = args.url.clone();
        let expect = args.expect;
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let index = next.fetch_add(1, Ordering::Relaxed) % reviews.len();
                let sample = send(&client, &url, &reviews[index], expect, sent).await;
                if sent >= measured_from && sample.done <= end {
                    samples.push(sample);
                }
            }
            samples
        }));
    }
    let mut samples = Vec::new();
    for task in futures::future::join_all(tasks).await {
        samples.extend(task.expect("sender"));
    }
    (samples, window)
}

/// `rate` reviews per second on a schedule, released every millisecond; requests scheduled in the warm-up are not
/// counted. The window runs from the first counted send to the last counted answer.
/// Also returns how late each millisecond tick woke up (nanoseconds, sorted).
async fn open_loop(
    args: &Args,
    rate: f64,
    clients: &[reqwest::Client],
    reviews: &Arc<Vec<Review>>,
) -> anyhow::Result<(Vec<Sample>, Duration, u64, Vec<u64>)> {
    if !(rate.is_finite() && rate > 0.0) {
        bail!("--rate must be a positive number");
    }
    let total = (rate * (args.warmup + args.duration)).round() as u64;
    let counted_from = (rate * args.warmup).round() as u64;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (results, mut received) = tokio::sync::mpsc::unbounded_channel::<Sample>();
    let start = Instant::now();
    let mut tick = start;
    let mut lags = Vec::new();
    let mut scheduled = 0u64;
    let mut skipped = 0u64;
    let mut first_counted = None;
    while scheduled < total {
        // How late this process wakes up for its tick is the scheduling noise of the machine, on this side.
        tick = tick.max(Instant::now() - Duration::from_millis(1)) + Duration::from_millis(1);
        tokio::time::sleep_until(tick).await;
        lags.push(
            u64::try_from(Instant::now().duration_since(tick).as_nanos()).unwrap_or(u64::MAX),
        );
        let due = ((start.elapsed().as_secs_f64() * rate) as u64 + 1).min(total);
        while scheduled < due {
            let counted = scheduled >= counted_from;
            let n = usize::try_from(scheduled).unwrap_or(0);
            scheduled += 1;
            if in_flight.load(Ordering::Relaxed) >= args.max_in_flight {
                skipped += u64::from(counted);
                continue;
            }
            in_flight.fetch_add(1, Ordering::Relaxed);
            let sent = Instant::now();
            if counted && first_counted.is_none() {
                first_counted = Some(sent);
            }
            let client = clients[n % clients.len()].clone();
            let index = n % reviews.len();
            let reviews = Arc::clone(reviews);
            let url = args.url.clone();
            let expect = args.expect;
            let in_flight = Arc::clone(&in_flight);
            let results = results.clone();
            tokio::spawn(async move {
                let sample = send(&client, &url, &reviews[index], expect, sent).await;
                in_flight.fetch_sub(1, Ordering::Relaxed);
                if counted {
                    let _ = results.send(sample);
                }
            });
        }
    }
    drop(results);
    let mut samples = Vec::new();
    while let Some(sample) = received.recv().await {
        samples.push(sample);
    }
    let from = first_counted.unwrap_or(start);
    let last = samples.iter().map(|s| s.done).max().unwrap_or(from);
    lags.sort_unstable();
    Ok((samples, last.duration_since(from), skipped, lags))
}

/// The sample at percentile `p` (nearest rank) of sorted nanoseconds, in milliseconds.
fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted[index] as f64 / 1e6
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn report(
    args: &Args,
    mode: &str,
    samples: &[Sample],
    window: Duration,
    skipped: u64,
    sched_ms: Option<(f64, f64)>,
) -> Value {
    let mut latencies: Vec<u64> = samples.iter().map(|s| s.latency_ns).collect();
    latencies.sort_unstable();
    let errors: Vec<&String> = samples.iter().filter_map(|s| s.error.as_ref()).collect();
    let seconds = window.as_secs_f64();
    let mean = if latencies.is_empty() {
        0.0
    } else {
        latencies.iter().map(|&l| l as f64).sum::<f64>() / latencies.len() as f64 / 1e6
    };
    json!({
        "label": args.label,
        "mode": mode,
        "http": match args.http { Http::One => "1.1", Http::Two => "2" },
        "connections": args.connections,
        "concurrency": if mode == "closed" { json!(args.concurrency) } else { Value::Null },
        "rate": args.rate,
        "requests": samples.len(),
        "errors": errors.len(),
        "skipped": skipped,
        "first_error": errors.first(),
        "seconds": round3(seconds),
        "client_cpu_ms": sched_ms.map(|(run, _)| round3(run)),
        "client_wait_ms": sched_ms.map(|(_, wait)| round3(wait)),
        "throughput": if seconds > 0.0 { (samples.len() as f64 / seconds).round() } else { 0.0 },
        "latency_ms": {
            "min": round3(percentile_ms(&latencies, 0.0)),
            "p50": round3(percentile_ms(&latencies, 50.0)),
            "p90": round3(percentile_ms(&latencies, 90.0)),
            "p99": round3(percentile_ms(&latencies, 99.0)),
            "p999": round3(percentile_ms(&latencies, 99.9)),
            "max": round3(percentile_ms(&latencies, 100.0)),
            "mean": round3(mean),
        },
    })
}
