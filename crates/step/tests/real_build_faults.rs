//! A registry that fails the real build's push (issue 19 §5, "the fault proxy throttling the registry"): the shell
//! app built for real (`RailpackBuildkit`, as real_build.rs) and pushed through our fault proxy in front of the
//! registry, which answers BuildKit's blob uploads `503` (or `429`). The step must report a registry failure
//! (exit 75, retryable: the Tekton retry or a rerun helps), naming the registry's answer, and not a build failure
//! (70); a burst of a 429 and a 503 that ends is retried by BuildKit itself and the build is pushed. The stand-in
//! here is the fault proxy: a real registry cannot be made to answer 503 on demand.
//!
//! Needs root and `make peers deps`, as real_build.rs.

mod real_support;

use kibaship_testsupport::faultproxy::{Fault, FaultProxy};
use real_support::{COMMIT, Peers, Workspace, registry_head_digest, text};

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
