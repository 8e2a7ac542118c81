//! `kibaship-harness`: the registry harness for shell scripts (`make demo`, `make bench`), the real Railpack
//! build's buildkitd (`kibaship-harness buildkit start|stop`), and the one-node cluster
//! (`kibaship-harness cluster up|down|run`).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::{Parser, Subcommand};
use kibaship_testsupport::cluster::{self, TestCluster};
use kibaship_testsupport::fixtures;
use kibaship_testsupport::railpack_build;
use kibaship_testsupport::registry::{self, RegistryEndpoint, RegistryMode, TestRegistry};
use kibaship_testsupport::sigstore::{SigstoreOptions, TestSigstore};
use nix::sys::signal::{self, SigSet, Signal};
use nix::unistd::Pid;

#[derive(Parser)]
#[command(
    name = "kibaship-harness",
    about = "Start real test registries and push fixture images"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start or stop a registry that outlives this command.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Push fixture images.
    #[command(subcommand)]
    Fixtures(FixturesCommand),
    /// Push many tags of one small image.
    #[command(subcommand)]
    Tags(TagsCommand),
    /// Run a command beside a private Sigstore (OIDC issuer, Fulcio, CT log, TSA, Rekor v2) on loopback.
    #[command(subcommand)]
    Sigstore(SigstoreCommand),
    /// Start or stop a real buildkitd for Railpack builds offline, beside a registry (needs root).
    #[command(subcommand)]
    Buildkit(BuildkitCommand),
    /// A real one-node Kubernetes cluster (one per host; needs root); see docs/cluster.md.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Serve the token server of a detached token-tls registry (started by `registry start`).
    #[command(hide = true)]
    TokenServer {
        #[arg(long)]
        state_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Start a registry; prints `export KIBASHIP_REGISTRY=...` lines once it answers, and leaves it running.
    Start {
        /// plain, basic-tls, token-tls or referrers.
        #[arg(long, default_value = "plain")]
        mode: RegistryMode,
        /// Where config, certificates, storage, logs and pids go.
        #[arg(long)]
        state_dir: PathBuf,
    },
    /// Stop the registry (and token server) started from this state directory.
    Stop {
        #[arg(long)]
        state_dir: PathBuf,
    },
    /// Start a registry tied to this process and hold it until stdin closes (prints `host`, `pids`, `dir` lines).
    #[command(hide = true)]
    Hold {
        #[arg(long, default_value = "plain")]
        mode: RegistryMode,
    },
}

#[derive(Subcommand)]
enum BuildkitCommand {
    /// Push Railpack's frontend, base stand-ins and SBOM scanner images to REGISTRY and start buildkitd with
    /// REGISTRY as its mirror for ghcr.io and docker.io (and a plain-HTTP push target); prints
    /// `export BUILDKIT_HOST=...` lines once it lists its worker, and leaves it running.
    Start {
        /// A plain-HTTP registry, e.g. 127.0.0.1:5000 (`registry start --mode plain`).
        #[arg(long, env = "KIBASHIP_REGISTRY")]
        registry: String,
        /// Where pids, the export lines and the logs go (buildkitd's root is a temp dir recorded here).
        #[arg(long)]
        state_dir: PathBuf,
    },
    /// Stop the buildkitd started from this state directory and remove its processes, mounts and directory.
    Stop {
        #[arg(long)]
        state_dir: PathBuf,
    },
    /// Run the buildkitd of `buildkit start` until SIGTERM, SIGINT or SIGHUP.
    #[command(hide = true)]
    Hold {
        #[arg(long)]
        registry: String,
        #[arg(long)]
        state_dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct Target {
    /// Registry address, e.g. 127.0.0.1:5000.
    #[arg(long, env = "KIBASHIP_REGISTRY")]
    registry: String,
    /// CA bundle (PEM) for an HTTPS registry.
    #[arg(long, env = "KIBASHIP_REGISTRY_CA")]
    ca: Option<PathBuf>,
    /// Username; the password is read from KIBASHIP_REGISTRY_PASSWORD.
    #[arg(long, env = "KIBASHIP_REGISTRY_USER")]
    username: Option<String>,
}

impl Target {
    fn endpoint(&self) -> anyhow::Result<RegistryEndpoint> {
        let credentials = match &self.username {
            None => None,
            Some(user) => {
                let password = std::env::var("KIBASHIP_REGISTRY_PASSWORD")
                    .context("--username needs the password in KIBASHIP_REGISTRY_PASSWORD")?;
                Some((user.clone(), password))
            }
        };
        Ok(RegistryEndpoint {
            host: self.registry.clone(),
            ca_pem: self.ca.clone(),
            credentials,
        })
    }
}

#[derive(Subcommand)]
enum FixturesCommand {
    /// Push every fixture (OCI manifest, OCI index, Docker manifest, Docker manifest list) and print their refs.
    Push {
        #[command(flatten)]
        target: Target,
        /// Print `reference<TAB>media type<TAB>index|image` instead of references only.
        #[arg(long)]
        long: bool,
    },
}

#[derive(Subcommand)]
enum SigstoreCommand {
    /// Start the stack, run COMMAND with its settings in the environment, stop the stack, exit as COMMAND did.
    ///
    /// COMMAND sees `KIBASHIP_SIGSTORE_SIGNING_CONFIG`, `KIBASHIP_SIGSTORE_TRUSTED_ROOT`,
    /// `KIBASHIP_SIGSTORE_ISSUER`, `KIBASHIP_SIGSTORE_IDENTITY` and `KIBASHIP_SIGSTORE_TOKEN_FILE` (an ID token
    /// for the identity, minted by the stack's issuer, in a 0600 file).
    Run {
        /// Email identity the minted ID token names.
        #[arg(long, default_value = "demo@kibaship.test")]
        identity: String,
        /// Also start Rekor v1 (rekor-server on Trillian + MariaDB), for cosign's legacy `.sig` layout.
        #[arg(long)]
        rekor_v1: bool,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true)]
        command: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Start the cluster, print `export KUBECONFIG=...` lines, and keep it up until SIGINT, SIGTERM or
    /// `cluster down`; then tear it down.
    Up,
    /// Stop a cluster held by `cluster up` and remove whatever any earlier cluster left on this host.
    Down,
    /// Start the cluster, run COMMAND with KUBECONFIG set, tear the cluster down, exit as COMMAND did.
    ///
    /// The `kubectl` peer is first on COMMAND's PATH. COMMAND also sees `KIBASHIP_CLUSTER_REGISTRY` (the registry the node pulls from, plain HTTP) and
    /// `KIBASHIP_CLUSTER_TOOLS_IMAGE` (busybox and kubectl).
    Run {
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true)]
        command: Vec<String>,
    },
}

#[derive(Subcommand)]
enum TagsCommand {
    /// Push one small image under COUNT distinct tags and print the references.
    Push {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        repository: String,
        #[arg(long)]
        count: usize,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kibaship-harness: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Registry(RegistryCommand::Start { mode, state_dir }) => {
            let exe = std::env::current_exe()
                .context("locating kibaship-harness for the token server")?;
            let started = registry::start_detached(mode, &state_dir, &exe).with_context(|| {
                format!("starting a {mode} registry in {}", state_dir.display())
            })?;
            write!(out, "{}", started.export_lines())?;
        }
        Command::Registry(RegistryCommand::Stop { state_dir }) => {
            let stopped = registry::stop_detached(&state_dir)?;
            eprintln!(
                "kibaship-harness: stopped {stopped} process(es) from {}",
                state_dir.display()
            );
        }
        Command::Registry(RegistryCommand::Hold { mode }) => {
            let reg = TestRegistry::start(mode)?;
            let pids: Vec<String> = reg.process_ids().iter().map(u32::to_string).collect();
            writeln!(
                out,
                "host {}\npids {}\ndir {}",
                reg.host(),
                pids.join(" "),
                reg.work_dir().display()
            )?;
            out.flush()?;
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        }
        Command::Fixtures(FixturesCommand::Push { target, long }) => {
            for f in fixtures::push_fixture_images_to(&target.endpoint()?)? {
                if long {
                    let kind = if f.is_index { "index" } else { "image" };
                    writeln!(out, "{}\t{}\t{kind}", f.reference, f.media_type)?;
                } else {
                    writeln!(out, "{}", f.reference)?;
                }
            }
        }
        Command::Tags(TagsCommand::Push {
            target,
            repository,
            count,
        }) => {
            let endpoint = target.endpoint()?;
            for tag in fixtures::push_tags_to(&endpoint, &repository, count)? {
                writeln!(out, "{}/{repository}:{tag}", endpoint.host)?;
            }
        }
        Command::Buildkit(BuildkitCommand::Start {
            registry,
            state_dir,
        }) => {
            let exe =
                std::env::current_exe().context("locating kibaship-harness for the holder")?;
            let exports = railpack_build::start_detached(&registry, &state_dir, &exe)
                .with_context(|| {
                    format!(
                        "starting buildkitd for {registry} in {}",
                        state_dir.display()
                    )
                })?;
            write!(out, "{exports}")?;
        }
        Command::Buildkit(BuildkitCommand::Stop { state_dir }) => {
            let stopped = railpack_build::stop_detached(&state_dir)?;
            eprintln!(
                "kibaship-harness: stopped {stopped} process(es) from {}",
                state_dir.display()
            );
        }
        Command::Buildkit(BuildkitCommand::Hold {
            registry,
            state_dir,
        }) => railpack_build::hold_detached(&registry, &state_dir)?,
        Command::Cluster(command) => run_cluster(command)?,
        Command::TokenServer { state_dir } => registry::serve_detached_token_server(&state_dir)?,
        Command::Sigstore(SigstoreCommand::Run {
            identity,
            rekor_v1,
            command,
        }) => {
            let code = run_beside_sigstore(
                &identity,
                SigstoreOptions {
                    rekor_v1,
                    ..Default::default()
                },
                &command,
            )?;
            if code != 0 {
                anyhow::bail!("`{}` exited with {code}", command.join(" "));
            }
        }
    }
    Ok(())
}

/// Starts the private Sigstore, runs `command` with its settings in the environment, and stops the stack when
/// the command ends (the stack's Drop), returning the command's exit code.
fn run_beside_sigstore(
    identity: &str,
    options: SigstoreOptions,
    command: &[String],
) -> anyhow::Result<i32> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let (program, args) = command.split_first().context("no command given")?;
    let stack = TestSigstore::start_with(options).context("starting the private Sigstore")?;
    let token_file = stack.work_dir().join("demo-id-token");
    let token = stack.mint_token(identity)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&token_file)
        .and_then(|mut f| f.write_all(token.as_bytes()))
        .with_context(|| format!("writing {}", token_file.display()))?;
    let status = std::process::Command::new(program)
        .args(args)
        .env(
            "KIBASHIP_SIGSTORE_SIGNING_CONFIG",
            stack.signing_config_path(),
        )
        .env("KIBASHIP_SIGSTORE_TRUSTED_ROOT", stack.trusted_root_path())
        .env("KIBASHIP_SIGSTORE_ISSUER", stack.issuer())
        .env("KIBASHIP_SIGSTORE_IDENTITY", identity)
        .env("KIBASHIP_SIGSTORE_TOKEN_FILE", &token_file)
        .status()
        .with_context(|| format!("running {program}"))?;
    drop(stack);
    Ok(status.code().unwrap_or(128))
}

/// The signals that end `cluster up` and interrupt `cluster run`.
fn stop_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set
}

fn run_cluster(command: ClusterCommand) -> anyhow::Result<()> {
    let up_pid = cluster::cluster_home()?.join("up.pid");
    match command {
        ClusterCommand::Down => {
            if let Some(pid) = std::fs::read_to_string(&up_pid)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
            {
                // `cluster up` tears its cluster down on SIGTERM; wait for it to exit, then sweep anyway
                // (idempotent) in case it was killed without tearing down.
                let _ = signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
                while kibaship_testsupport::process_alive(u32::try_from(pid).unwrap_or(0)) {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                let _ = std::fs::remove_file(&up_pid);
            }
            // Not while a test's cluster runs: wait for the host lock.
            let _lock = cluster::lock_host()?;
            let started = std::time::Instant::now();
            let left = cluster::sweep()?;
            eprintln!(
                "kibaship-harness: cluster swept in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            anyhow::ensure!(left.is_empty(), "left on the host: {left:?}");
        }
        ClusterCommand::Up => {
            // Signals are taken synchronously (std::process::Command unblocks them in children).
            let signals = stop_signals();
            signals.thread_block()?;
            let cluster = start_cluster()?;
            std::fs::write(&up_pid, std::process::id().to_string())?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "export KUBECONFIG={}\nexport KIBASHIP_CLUSTER_REGISTRY={}\nexport KIBASHIP_CLUSTER_TOOLS_IMAGE={}",
                cluster.kubeconfig_path().display(),
                cluster.registry().map(|r| r.host()).unwrap_or_default(),
                cluster.tools_image()
            )?;
            out.flush()?;
            let received = signals.wait()?;
            eprintln!("kibaship-harness: {received:?}: tearing the cluster down");
            let took = cluster.teardown()?;
            let _ = std::fs::remove_file(&up_pid);
            eprintln!(
                "kibaship-harness: cluster torn down in {:.1} s",
                took.as_secs_f64()
            );
        }
        ClusterCommand::Run { command } => {
            let (program, args) = command.split_first().context("no command given")?;
            let signals = stop_signals();
            signals.thread_block()?;
            // Ctrl-C (or SIGTERM) at any point: sweep the host, then exit 130. The sweep is serialised with the
            // teardown the main thread may be running.
            std::thread::spawn(move || {
                if let Ok(received) = signals.wait() {
                    INTERRUPTED.store(true, Ordering::SeqCst);
                    eprintln!("kibaship-harness: {received:?}: tearing the cluster down");
                    match cluster::sweep() {
                        Ok(left) if left.is_empty() => {}
                        Ok(left) => eprintln!("kibaship-harness: left on the host: {left:?}"),
                        Err(e) => eprintln!("kibaship-harness: sweep failed: {e}"),
                    }
                    std::process::exit(130);
                }
            });
            let result = run_in_cluster(program, args);
            if INTERRUPTED.load(Ordering::SeqCst) {
                // The signal thread sweeps and exits 130; the command's own end (it got the signal too) or a
                // start cut short by the sweep must not exit first with another code.
                loop {
                    std::thread::park();
                }
            }
            let code = result?;
            if code != 0 {
                anyhow::bail!("`{}` exited with {code}", command.join(" "));
            }
        }
    }
    Ok(())
}

/// Set by `cluster run`'s signal thread once it has taken a stop signal.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Starts the cluster, runs the command beside it, tears the cluster down; returns the command's exit code.
fn run_in_cluster(program: &str, args: &[String]) -> anyhow::Result<i32> {
    let cluster = start_cluster()?;
    // The `kubectl` peer first on PATH: the same version as the cluster.
    let mut path = std::ffi::OsString::from(
        cluster
            .kubectl_path()
            .parent()
            .unwrap_or(std::path::Path::new("/")),
    );
    if let Some(rest) = std::env::var_os("PATH") {
        path.push(":");
        path.push(rest);
    }
    let status = std::process::Command::new(program)
        .args(args)
        .env("PATH", path)
        .env("KUBECONFIG", cluster.kubeconfig_path())
        .env(
            "KIBASHIP_CLUSTER_REGISTRY",
            cluster.registry().map(|r| r.host()).unwrap_or_default(),
        )
        .env("KIBASHIP_CLUSTER_TOOLS_IMAGE", cluster.tools_image())
        .status()
        .with_context(|| format!("running {program}"))?;
    if INTERRUPTED.load(Ordering::SeqCst) {
        // Interrupted: the signal thread tears down (Drop would only race it).
        std::mem::forget(cluster);
        return Ok(130);
    }
    let took = cluster.teardown()?;
    eprintln!(
        "kibaship-harness: cluster torn down in {:.1} s",
        took.as_secs_f64()
    );
    Ok(status.code().unwrap_or(128))
}

fn start_cluster() -> anyhow::Result<TestCluster> {
    let cluster = TestCluster::start().context("starting the cluster")?;
    let t = cluster.timings();
    eprintln!(
        "kibaship-harness: node Ready {:.1} s after the first daemon (start {:.1} s in all); logs in {}",
        t.to_node_ready.as_secs_f64(),
        t.start_total.as_secs_f64(),
        cluster.state_dir().join("logs").display()
    );
    Ok(cluster)
}
