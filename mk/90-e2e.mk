# make e2e (issue 19 §4): the whole story on the real one-node cluster with Tekton, in one run
# (crates/step/tests/tekton_pipeline.rs): a PipelineRun of our Pipeline clones, plans (real railpack), builds
# (rootless BuildKit in the Pod), scans, signs, attests and notifies; the image is then deployed under our admission
# webhook (deploy/ as shipped): admitted and run, its unsigned copy and an image carrying its signature refused with
# their reason codes; `kibaverify audit` over the cluster reports all three. Prints a breakdown per stage.
# `make test` runs the same test; this target runs it alone, with its output. Needs root and every peer
# (`make peers`: kube-apiserver, kube-node, containerd, tekton-pipelines, buildkit, railpack, trivy, cosign, crane).
.PHONY: e2e

e2e: peers
	$(CARGO) test --workspace --locked --no-run
	$(CARGO) test --workspace --locked --test tekton_pipeline -- --nocapture

# make bench-builds (issue 19 §5, load): N concurrent PipelineRuns (N from KIBASHIP_BENCH_BUILDS, default 4,8) of
# the shell app at distinct commits on the same cluster: success rate, p50/p95/max duration, retried tasks and
# registry failures (crates/step/tests/bench_builds.rs, ignored by make test). Not in BENCH_TARGETS: it takes
# minutes per batch on 2 cores.
.PHONY: bench-builds

bench-builds: peers
	$(CARGO) test --workspace --locked --no-run
	$(CARGO) test --workspace --locked --test bench_builds -- --ignored --nocapture

# make chaos (issue 19 §5, chaos): on the same one-node cluster, a build secret rotated between two builds (the
# second rebuilds instead of deduping), containerd restarted while a build runs, and a build pushing through the
# fault proxy on the node address while it answers 429/503 bursts (crates/step/tests/tekton_chaos.rs, also run by
# make test); and the real build failing its push on a registry answering 503 (real_build_faults.rs, host only).
.PHONY: chaos

chaos: peers
	$(CARGO) test --workspace --locked --no-run
	$(CARGO) test --workspace --locked --test real_build_faults --test tekton_chaos -- --nocapture
