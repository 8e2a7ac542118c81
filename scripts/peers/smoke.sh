#!/usr/bin/env bash
# Runs the peers' smoke tests one after another and prints `peers-smoke: N passed, M failed`.
#   scripts/peers/smoke.sh          every smoke-*.sh that covers a peer marked here=yes in tools/peers.txt
#   scripts/peers/smoke.sh NAME...  the scripts covering these peers
# smoke-<name>.sh covers peer <name>; a script may cover more with a header line `# covers: name...`.
# A here=yes peer that no script covers is a failure: nothing is skipped silently.
set -uo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
list="$dir/../../tools/peers.txt"

wanted=("$@")
if [ "${#wanted[@]}" -eq 0 ]; then
  mapfile -t wanted < <(awk '$1 !~ /^#/ && NF >= 5 && $4 == "yes" { print $1 }' "$list")
fi

# Peers each script covers.
declare -A covers
for script in "$dir"/smoke-*.sh; do
  name="$(basename "$script" .sh)"
  name="${name#smoke-}"
  covers["$script"]=" $name $(sed -n 's/^# covers: //p' "$script" | tr '\n' ' ') "
done

passed=0
failed=0
to_run=()
for peer in "${wanted[@]}"; do
  found=0
  for script in "${!covers[@]}"; do
    if [[ "${covers[$script]}" == *" $peer "* ]]; then
      found=1
      [[ " ${to_run[*]-} " == *" $script "* ]] || to_run+=("$script")
    fi
  done
  if [ "$found" = 0 ]; then
    echo "FAIL $peer: no smoke test covers it (add scripts/peers/smoke-$peer.sh or a '# covers: $peer' line)"
    failed=$((failed + 1))
  fi
done

mapfile -t to_run < <(printf '%s\n' "${to_run[@]-}" | grep -v '^$' | sort)
for script in "${to_run[@]}"; do
  out="$(bash "$script")"
  rc=$?
  [ -n "$out" ] || out="FAIL $(basename "$script"): exited $rc without a PASS/FAIL line"
  echo "$out"
  if [ "$rc" -eq 0 ] && [[ "$out" == PASS* ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "peers-smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
