# SBOMs as referrers (issue 17): crates/sbom, `kibaverify sbom attach|list|get`.
# make bench-sbom: attach of a ~50 MB CycloneDX document beside `oras attach`, on go-containerregistry's registry
# and on docker-registry, and peak memory (/usr/bin/time).
APT_PACKAGES += time python3
BENCH_TARGETS += bench-sbom

.PHONY: bench-sbom

bench-sbom: deps peers
	$(CARGO) build --release --locked -p kibaverify -p kibaship-testsupport --bin kibaverify --bin kibaship-harness
	bash scripts/bench-sbom.sh
