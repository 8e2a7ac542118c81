//! A registry that fails the real build's push (issue 19 §5, "the fault proxy throttling the registry"): the shell
//! app built for real (`RailpackBuildkit`, as real_build.rs) and pushed through our fault proxy in front of the
//! registry, which answers BuildKit's blob uploads `503` (or `429`). The step must report a registry failure
//! (exit 75, retryable: the Tekton retry or a rerun helps), naming the registry's answer, and not a build failure
//! (70); a burst of a 429 and a 503 that ends is retried by BuildKit itself and the build is pushed. The stand-in
//! here is the fault proxy: a real registry cannot be made to answer 503 on demand.
//!
//! The registry restarted mid-push: the first blob upload's answer is held by the fault proxy (the request has
//! reached the registry) while the real registry process is stopped and started again on its storage; the
//! push goes on against the restarted registry. The build must succeed, or fail as a registry failure (75);
//! the registry must serve what the step reports.
//!
//! And a failure inside BuildKit itself, with no stand-in: the fixture app `shell-failing-build` declares a build
//! command (railpack.json) that prints a compiler-like error and exits 3; real `railpack prepare` plans it, real
//! BuildKit runs it and fails the solve. The step must exit 70 (build failure, not retryable), keep BuildKit's
//! error (the command's own output and its exit code) in its stderr, write no digest and push nothing.
//!
//! Needs root and `make peers deps`, as real_build.rs.

mod real_support;

use kibaship_testsupport::faultproxy::{Fault, FaultProxy};
use std::process::Command;

use real_support::{COMMIT, Peers, REPOSITORY, Workspace, registry_head_digest, text};

#[test]
fn fault_proxy_503_on_the_push_is_a_registry_failure_and_a_burst_is_retried_by_buildkit() {
    let peers = Peers::start();
    let host = peers.registry.host();
    let ws = Workspace::new("shell");
    ws.prepare_ok();

    // Every blob upload answered 503: the dedupe lookup (manifests) passes, BuildKit's push fails.
    let down = FaultProxy::start_for_paths(&host, "/blobs/uploads/", Fault::ServiceUnavailable)
        .expect("fault proxy");
    let built = ws.build(&down.host(), &peers.buildkit);
    let stderr = text(&built.stderr);
    assert_eq!(
        built.status.code(),
        Some(75),
        "a 503 on the push is retryable:\n{stderr}"
    );
    assert!(
        stderr.contains("kibaship-step: registry or service error (retryable): buildctl build failed on the registry: buildctl exited with")
            && stderr.contains("503"),
        "{stderr}"
    );
    assert!(down.requests_seen() > 0);
    assert!(
        ws.result("digest").is_empty(),
        "no digest result on failure"
    );

    // A burst of 429 and 503 that ends: BuildKit (containerd's pusher) retries both, and the build is pushed.
    let burst = FaultProxy::start_on(
        std::net::Ipv4Addr::LOCALHOST.into(),
        &host,
        "/blobs/uploads/",
        vec![
            Fault::TooManyRequests {
                retry_after_secs: 1,
            },
            Fault::ServiceUnavailable,
        ],
    )
    .expect("fault proxy");
    let built = ws.build(&burst.host(), &peers.buildkit);
    let stderr = text(&built.stderr);
    eprintln!(
        "a burst of 2 faults: exit {:?}, {} requests, {} faults left",
        built.status.code(),
        burst.requests_seen(),
        burst.script_left()
    );
    assert_eq!(built.status.code(), Some(0), "{stderr}");
    assert_eq!(
        burst.script_left(),
        0,
        "the burst reached the registry side"
    );
    assert_eq!(
        registry_head_digest(&host, COMMIT),
        ws.result("digest"),
        "the registry serves what the step reports"
    );
}

#[test]
fn a_build_command_failing_inside_buildkit_is_a_build_failure_that_keeps_buildkits_error() {
    let peers = Peers::start();
    let host = peers.registry.host();
    let ws = Workspace::new("shell-failing-build");
    ws.prepare_ok();
    let plan = std::fs::read_to_string(ws.result("planPath")).expect("the plan");
    assert!(
        plan.contains("compile-error: include/app.h"),
        "railpack planned the app's build command:\n{plan}"
    );

    let built = ws.build(&host, &peers.buildkit);
    let stderr = text(&built.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(4).collect();
    eprintln!("the step's last lines, last first:\n{}", tail.join("\n"));
    assert_eq!(
        built.status.code(),
        Some(70),
        "a command failing inside BuildKit is a build failure:\n{stderr}"
    );
    assert!(
        stderr.contains("kibaship-step: build error: buildctl build failed: buildctl exited with exit status: 1: failed to solve: process \"sh -c echo compile-error"),
        "the failure kind and BuildKit's reason are named in the step's own error:\n{stderr}"
    );
    assert!(
        !stderr.contains("registry or service error"),
        "not mistaken for a registry failure:\n{stderr}"
    );
    // BuildKit's own report: the command's output and its exit status, relayed from buildctl.
    assert!(
        stderr.contains("compile-error: include/app.h: no such file"),
        "the failing command's output is kept:\n{stderr}"
    );
    assert!(
        stderr.contains("did not complete successfully: exit code: 3"),
        "BuildKit's error is kept:\n{stderr}"
    );
    assert!(
        ws.result("digest").is_empty(),
        "no digest result on failure"
    );
    let status = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{host}/v2/{REPOSITORY}/manifests/{COMMIT}"))
        .output()
        .expect("curl");
    assert_eq!(text(&status.stdout), "404", "nothing was pushed");
}

#[test]
fn the_registry_restarted_mid_push_is_survived_or_a_registry_failure() {
    let mut peers = Peers::start();
    let host = peers.registry.host();
    let ws = Workspace::new("shell");
    ws.prepare_ok();

    // The first upload request reaches the registry; its answer is held for 3 s, and meanwhile the registry
    // stops, stays down for 2 s and starts again. The other uploads BuildKit runs in parallel meet the registry
    // down, or the restarted one.
    let proxy = FaultProxy::start_on(
        std::net::Ipv4Addr::LOCALHOST.into(),
        &host,
        "/blobs/uploads/",
        vec![Fault::SlowBody { delay_ms: 3000 }],
    )
    .expect("fault proxy");
    let (built, away) = std::thread::scope(|scope| {
        let build = scope.spawn(|| ws.build(&proxy.host(), &peers.buildkit));
        while proxy.script_left() > 0 && !build.is_finished() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let away = (proxy.script_left() == 0).then(|| {
            peers
                .registry
                .restart(std::time::Duration::from_secs(2))
                .expect("restart the registry")
        });
        (build.join().expect("the build thread"), away)
    });
    let stderr = text(&built.stderr);
    let away = away.expect("the push reached the registry before the build ended");
    eprintln!(
        "registry away {:.2} s mid-push; step exit {:?}; {} requests through the proxy",
        away.as_secs_f64(),
        built.status.code(),
        proxy.requests_seen()
    );
    match built.status.code() {
        Some(0) => assert_eq!(
            registry_head_digest(&host, COMMIT),
            ws.result("digest"),
            "the restarted registry serves what the step reports"
        ),
        Some(75) => assert!(
            stderr.contains("kibaship-step: registry or service error (retryable)"),
            "{stderr}"
        ),
        other => panic!(
            "a registry restart must end in success or a registry failure, not {other:?}:\n{stderr}"
        ),
    }
    // Whatever the first attempt did, the same build again (the retry Tekton would run) is pushed whole.
    let again = ws.build_ok(&host, &peers.buildkit);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(
        registry_head_digest(&host, COMMIT),
        ws.result("digest"),
        "the registry serves what the step reports"
    );
}
