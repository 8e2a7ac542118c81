# Tekton railpack tasks (issue 5): tasks/*.yaml and the kibaship-step driver (crates/step). See docs/tekton.md.
# skopeo + docker-registry + python3: the buildctl stand-in pushes real images to the test registry;
# dash: the design's secrets-hash recipe runs under `sh`; yamllint/shellcheck/tekton-lint: the checks below.
APT_PACKAGES += yamllint shellcheck skopeo docker-registry python3 dash
NPM_TOOLS += tekton-lint@0.6.0
TEST_EXTRA += tekton-lint

TEKTON_YAML := $(wildcard tasks/*.yaml)

.PHONY: tekton-lint

# yamllint on every Task/Pipeline; tekton-lint (run inside tasks/ so it reads tasks/.tektonlintrc.yaml; no
# warnings allowed); shellcheck on the demo step. Any `script:` in a Task is extracted and shellchecked by
# crates/step/tests/tekton_tasks.rs (part of the Rust tests).
tekton-lint:
	yamllint --strict -d '{extends: default, rules: {line-length: {max: 120}}}' $(TEKTON_YAML)
	cd tasks && tekton-lint --max-warnings 0 '*.yaml'
	shellcheck scripts/demo.d/50-build.sh
