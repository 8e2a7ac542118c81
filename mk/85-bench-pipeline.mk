# make bench-pipeline (issue 16, "Speed"): our overhead per build around the BuildKit solve and a dedupe hit
# (targets 1 s each), and scan-gate + sign + attest by kibaship-step/kibaverify against trivy image + cosign sign
# + cosign attest on the same image (target 1.5x), in one run (scripts/bench-pipeline.sh; figures in
# docs/build.md). Needs root and the demo's peers plus trivy-db; not part of make test.
BENCH_TARGETS += bench-pipeline

.PHONY: bench-pipeline

bench-pipeline: deps
	@bash scripts/peers/build.sh $(DEMO_PEERS) trivy-db
	bash scripts/bench-pipeline.sh
