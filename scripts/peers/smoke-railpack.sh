#!/usr/bin/env bash
# covers: mise
# railpack v0.15.0 `prepare`, offline, through scripts/peers/railpack-prepare.sh (the `mise` peer from npm at
# railpack's fixed mise path, mise's remote-versions cache seeded from tools/mise-remote-versions.txt, a private
# /tmp/railpack per run). The fixture apps of testdata/railpack/apps/ (shell, static, node, python, go) prepare
# concurrently; each plan and info is checked for what railpack decided (provider, resolved version and its
# source, build commands, start command). Then: a lock-mode run, an app no provider recognises, and no run
# directory left behind. No network, no listener.
source "$(dirname "$0")/lib.sh"

railpack="$(peer_bin railpack)"
mise="$(peer_bin mise)"
wrapper="$PEERS_REPO_ROOT/scripts/peers/railpack-prepare.sh"
apps="$PEERS_REPO_ROOT/testdata/railpack/apps"

run mise-version "$mise" --version
grep -q '^2025\.10\.13 linux-x64' "$SMOKE_WORK/mise-version.log" ||
  fail "mise --version: $(cat "$SMOKE_WORK/mise-version.log")"
run railpack-version "$railpack" --version
grep -q '^railpack version 0\.15\.0$' "$SMOKE_WORK/railpack-version.log" ||
  fail "railpack --version: $(cat "$SMOKE_WORK/railpack-version.log")"

fixture_state() { (cd "$apps" && find . -print0 | LC_ALL=C sort -z | xargs -0 stat -c '%n %s %Y'); }
fixtures_before="$(fixture_state)"

# The wrapper's run directories go under $SMOKE_WORK/tmp, so the test can see they are removed.
mkdir -p "$SMOKE_WORK/tmp" "$SMOKE_WORK/out"
prepare() { # APP [extra env...]: plan and info into $SMOKE_WORK/out/APP.{plan,info}.json
  local app="$1"; shift
  env TMPDIR="$SMOKE_WORK/tmp" KIBASHIP_RAILPACK_TIMEOUT=60 "$@" "$wrapper" "$apps/$app" \
    --plan-out "$SMOKE_WORK/out/$app.plan.json" --info-out "$SMOKE_WORK/out/$app.info.json" --hide-pretty-plan
}

# All five at once: each sees only its own /tmp/railpack (a private mount namespace each).
step "prepare shell static node python go concurrently"
start=$(date +%s.%N)
pids=()
for app in shell static node python go; do
  prepare "$app" >"$SMOKE_WORK/prepare-$app.log" 2>&1 &
  pids+=("$!")
done
i=0
for app in shell static node python go; do
  if ! wait "${pids[$i]}"; then
    tail -n 20 "$SMOKE_WORK/prepare-$app.log" | sed 's/^/    | /' >&2
    fail "railpack prepare of the $app fixture failed: $(grep -v '^[[:space:]]*$' "$SMOKE_WORK/prepare-$app.log" | tail -n 1)"
  fi
  i=$((i + 1))
done
secs="$(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)")"
step "five prepares took ${secs}s"

# check APP LABEL JQ-EXPR: the expression over {plan, info} must be true.
check() {
  local app="$1" label="$2" expr="$3" out="$SMOKE_WORK/out"
  step "check $app: $label"
  jq -e -n --slurpfile plan "$out/$app.plan.json" --slurpfile info "$out/$app.info.json" \
    "(\$plan[0]) as \$plan | (\$info[0]) as \$info | $expr" >/dev/null 2>"$SMOKE_WORK/jq.err" ||
    fail "$app: $label (plan: $(jq -c '{start: .deploy.startCommand, steps: [.steps[].name]}' "$out/$app.plan.json" 2>/dev/null | cut -c1-200); resolved: $(jq -c '.resolvedPackages' "$out/$app.info.json" 2>/dev/null))"
}
cmds='[$plan.steps[] | .commands[]? | .cmd // empty]'
resolved() { printf '$info.resolvedPackages.%s | .resolvedVersion == "%s" and .source == "%s"' "$1" "$2" "$3"; }

for app in shell static node python go; do
  check "$app" "info.success, railpackVersion 0.15.0" '$info.success == true and $info.railpackVersion == "0.15.0"'
  check "$app" "deploys on railpack-runtime" \
    '($plan.deploy.base.image // ($plan.deploy.base.step as $s | [$plan.steps[] | select(.name == $s) | .inputs[]?.image // empty][0]))
     | startswith("ghcr.io/railwayapp/railpack-runtime:")'
done
check shell "shell provider, start.sh" '$info.detectedProviders == ["shell"] and $plan.deploy.startCommand == "sh start.sh"'
check shell "build step makes start.sh executable" "$cmds | index(\"chmod +x start.sh\") != null"
check shell "no mise step (nothing to install)" '[$plan.steps[].name] == ["build"]'
check static "staticfile provider, caddy 2.9.1 (railpack's \"latest\" from the seeded cache)" \
  "\$info.detectedProviders == [\"staticfile\"] and ($(resolved caddy 2.9.1 'railpack default'))"
check static "caddy serves the Staticfile's root" \
  '($plan.deploy.startCommand | startswith("caddy run --config Caddyfile")) and ([$plan.steps[] | .assets?.Caddyfile // empty][0] | test("root \\* public"))'
check node "node 22.11.0 from package.json engines" \
  "\$info.detectedProviders == [\"node\"] and ($(resolved node 22.11.0 'package.json > engines > node'))"
check node "npm install, start script" "($cmds | index(\"npm install\") != null) and \$plan.deploy.startCommand == \"npm run start\""
check python "python 3.12 from runtime.txt resolves to 3.12.8 (newest 3.12 seeded)" \
  "\$info.detectedProviders == [\"python\"] and ($(resolved python 3.12.8 runtime.txt))"
check python "pip install, python main.py" \
  "($cmds | index(\"pip install -r requirements.txt\") != null) and \$plan.deploy.startCommand == \"python main.py\""
check go "go 1.23.4 from go.mod" "\$info.detectedProviders == [\"golang\"] and ($(resolved go 1.23.4 go.mod))"
check go "go build -o out, ./out" \
  "($cmds | map(select(startswith(\"go build\") and endswith(\"-o out\"))) | length == 1) and \$plan.deploy.startCommand == \"./out\""
for app in static node python go; do
  check "$app" "mise installs the resolved version" \
    '[$plan.steps[] | select(.name == "packages:mise") | .assets["mise.toml"]][0] as $t
     | all($info.resolvedPackages[]; . as $p | $t | contains("[tools.\($p.name)]\n    version = \"\($p.resolvedVersion)\""))'
done

# Lock mode (the fallback where unshare is not allowed): same result for one app.
run prepare-lock-mode prepare shell KIBASHIP_RAILPACK_ISOLATION=lock
check shell "lock mode: shell plan" '$plan.deploy.startCommand == "sh start.sh"'
[ ! -L /tmp/railpack ] || fail "lock mode left /tmp/railpack as a symlink"

# An app no provider recognises: railpack's own refusal, not a network or wrapper error.
mkdir -p "$SMOKE_WORK/apps/unknown"
echo "nothing to build" >"$SMOKE_WORK/apps/unknown/README.txt"
expect_rejected prepare-unknown 'Railpack could not determine how to build the app' \
  env TMPDIR="$SMOKE_WORK/tmp" KIBASHIP_RAILPACK_TIMEOUT=60 "$wrapper" "$SMOKE_WORK/apps/unknown" \
  --plan-out "$SMOKE_WORK/out/unknown.plan.json" --info-out "$SMOKE_WORK/out/unknown.info.json"

leftover="$(find "$SMOKE_WORK/tmp" -mindepth 1 -maxdepth 1 | head -n 3)"
[ -z "$leftover" ] || fail "railpack-prepare.sh left run directories behind: $leftover"
fixtures_after="$(fixture_state)"
[ "$fixtures_after" = "$fixtures_before" ] || fail "railpack prepare changed the fixture apps in $apps"

pass "railpack v0.15.0 prepare offline (mise 2025.10.13 from npm, seeded versions): shell, static (caddy 2.9.1), node 22.11.0, python 3.12.8, go 1.23.4 in ${secs}s concurrently, each in its own /tmp/railpack; lock mode; unknown app refused"
