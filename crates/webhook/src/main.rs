//! `kibaship-webhook serve`: the admission webhook. Thin: flags in, [`kibaship_webhook::start`], logs out.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use kibaship_oci::ClientConfig;
use kibaship_oci::duration::parse_duration;
use kibaship_webhook::ServerConfig;
use kibaship_webhook::kube_api::KubeApiConfig;

/// mimalloc instead of the C library's allocator: each review allocates and frees many small values (the
/// parsed review, the image's spellings, the answer, the log line); measured in `make bench-webhook`
/// (docs/webhook.md, Speed).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Admission webhook: only verified images into the namespaces the policy selects.
#[derive(Parser, Debug)]
#[command(name = "kibaship-webhook", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve /validate and /mutate over HTTPS, and /metrics over HTTP.
    Serve(Serve),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

#[derive(clap::Args, Debug)]
struct Serve {
    /// HTTPS address: /validate, /mutate, /healthz, /readyz.
    #[arg(long, default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// Plain-HTTP address: /metrics, /healthz, /readyz.
    #[arg(long, default_value = "0.0.0.0:9090")]
    metrics_listen: SocketAddr,
    /// PEM certificate chain to serve (reloaded when it changes).
    #[arg(long, value_name = "FILE")]
    tls_cert: PathBuf,
    /// PEM private key of the certificate (reloaded when it changes).
    #[arg(long, value_name = "FILE")]
    tls_key: PathBuf,
    /// Admission policy (YAML; reloaded when it changes; see docs/policy.md).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// trusted_root.json: Fulcio CAs, Rekor and CT keys, TSAs (reloaded when it changes; never fetched).
    #[arg(long, value_name = "FILE")]
    trusted_root: PathBuf,
    /// Longest one AdmissionReview may take; keep it below the webhook configuration's timeoutSeconds.
    #[arg(long, default_value = "8s", value_parser = parse_duration)]
    budget: Duration,
    /// Verification facts cached, at most.
    #[arg(long, default_value_t = 10_000)]
    cache_entries: usize,
    /// How long a verification fact is cached.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    cache_ttl: Duration,
    /// How often the policy, trusted root and certificate files are checked for changes.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    reload_interval: Duration,
    /// Registry (host:port) reached over plain HTTP (repeatable).
    #[arg(long, value_name = "HOST:PORT")]
    insecure_registry: Vec<String>,
    /// Requests in flight to one registry, at most (more wait their turn): bounds the connections a burst of new
    /// digests opens.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    registry_max_requests: u16,
    /// PEM bundle trusted for registries in addition to the system roots.
    #[arg(long, value_name = "FILE")]
    registry_ca_file: Option<PathBuf>,
    /// Directory holding a docker config.json with registry credentials (default: none is read).
    #[arg(long, value_name = "DIR")]
    docker_config: Option<PathBuf>,
    /// Kubernetes API server URL for namespace labels and Pods' pull secrets (out of cluster; with
    /// --kube-api-token-file and --kube-api-ca-file). In a cluster the service account is used without flags.
    #[arg(long, value_name = "URL", requires_all = ["kube_api_token_file", "kube_api_ca_file"], conflicts_with = "no_kube_api")]
    kube_api_url: Option<String>,
    /// Bearer token file for --kube-api-url (re-read when it changes).
    #[arg(long, value_name = "FILE", requires = "kube_api_url")]
    kube_api_token_file: Option<PathBuf>,
    /// CA bundle of the API server for --kube-api-url.
    #[arg(long, value_name = "FILE", requires = "kube_api_url")]
    kube_api_ca_file: Option<PathBuf>,
    /// Do not read the Kubernetes API: namespace labels are unknown (label selectors then apply everywhere) and
    /// only the webhook's own registry credentials are used.
    #[arg(long)]
    no_kube_api: bool,
    /// After SIGTERM, keep serving this long before stopping: the API server stops sending requests once the
    /// Pod's endpoint is removed, which takes a moment.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    shutdown_delay: Duration,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
}

fn main() -> anyhow::Result<()> {
    let Command::Serve(args) = Cli::parse().command;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match args.log_format {
        LogFormat::Json => tracing_subscriber::fmt()
            .event_format(kibaship_webhook::log_format::JsonLines)
            .with_env_filter(filter)
            .init(),
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
    }
    let registry = ClientConfig {
        insecure_registries: args.insecure_registry.clone(),
        ca_file: args.registry_ca_file.clone(),
        use_docker_config: args.docker_config.is_some(),
        docker_config_dir: args.docker_config.clone(),
        max_concurrent_requests_per_registry: usize::from(args.registry_max_requests),
        ..ClientConfig::default()
    };
    let kube_api = match (
        &args.kube_api_url,
        &args.kube_api_token_file,
        &args.kube_api_ca_file,
    ) {
        _ if args.no_kube_api => None,
        (Some(url), Some(token), Some(ca)) => Some(KubeApiConfig::new(url.clone(), token, ca)),
        // In a cluster (the service account's files and the API's address are there): use it.
        _ if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => Some(
            KubeApiConfig::in_cluster()
                .context("reading the in-cluster Kubernetes API configuration")?,
        ),
        _ => None,
    };
    let shutdown_delay = args.shutdown_delay;
    let config = ServerConfig {
        listen: args.listen,
        metrics_listen: Some(args.metrics_listen),
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        policy: args.policy,
        trusted_root: args.trusted_root,
        budget: args.budget,
        cache_entries: args.cache_entries,
        cache_ttl: args.cache_ttl,
        reload_interval: args.reload_interval,
        registry,
        kube_api,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let running = kibaship_webhook::start(config).await?;
        let metrics = running
            .metrics_addr
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(addr = %running.addr, metrics = %metrics, ready = running.state.is_ready(), "serving");
        shutdown_signal().await;
        tracing::info!(delay = ?shutdown_delay, "stopping after the shutdown delay");
        tokio::time::sleep(shutdown_delay).await;
        running.stop();
        anyhow::Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
