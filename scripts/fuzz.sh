#!/usr/bin/env bash
# The long run of tests/it/fuzz.rs: generated and mutated profiles through the
# loader, a tenth as many through `launch check`, and a sixth as many that
# `check` passes through the real daemon's create (Docker must answer), in
# a release build.
#   scripts/fuzz.sh [CASES]      CASES generated and CASES mutated profiles (default 100000)
#   LAUNCH_FUZZ_BATCH=N          profiles of each kind per process (default 10000)
#   LAUNCH_FUZZ_MINUTES=M        start no batch after M minutes (default: no limit)
# It runs in batches of fresh processes: each batch draws new seeds, and the
# loader keeps every file it reads until its process exits.
# A failure stops the run and prints the minimal failing input (every file of
# the case, exactly); proptest saves its seed in tests/fuzz.proptest-regressions,
# which every later run, `cargo test` included, replays first. Check it in.
# The whole output of the last batch is in target/fuzz.log.
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-100000}
batch=${LAUNCH_FUZZ_BATCH:-10000}
minutes=${LAUNCH_FUZZ_MINUTES:-0}
log=target/fuzz.log

# Each case is a fresh temp folder; on tmpfs that is ten times faster than on a disk.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  TMPDIR=$(mktemp -d /dev/shm/launch-fuzz.XXXXXX)
  export TMPDIR
  trap 'rm -rf "$TMPDIR"' EXIT
fi

cargo test --release --locked --test it --no-run
declare -A tried=() valid=() invalid=()
kinds=(generated mutated binary create)
for k in "${kinds[@]}"; do tried[$k]=0 valid[$k]=0 invalid[$k]=0; done
done_cases=0 failed=0 start=$SECONDS

while ((done_cases < total)); do
  n=$((total - done_cases < batch ? total - done_cases : batch))
  if ! LAUNCH_FUZZ_CASES=$n cargo test --release --locked --test it fuzz:: -- --nocapture >"$log" 2>&1; then
    failed=1
  fi
  # Lines such as "fuzz mutated: tried 10000 profiles (2000 valid, 8000 invalid)".
  while read -r kind t v i; do
    tried[$kind]=$((tried[$kind] + t)) valid[$kind]=$((valid[$kind] + v)) invalid[$kind]=$((invalid[$kind] + i))
  done < <(grep -oE 'fuzz [a-z]+: tried [0-9]+ profiles \([0-9]+ valid, [0-9]+ invalid\)' "$log" |
    sed -E 's/fuzz ([a-z]+): tried ([0-9]+) profiles \(([0-9]+) valid, ([0-9]+) invalid\)/\1 \2 \3 \4/')
  done_cases=$((done_cases + n))
  echo "fuzz: $done_cases of $total cases a kind after $((SECONDS - start))s"
  ((failed == 0)) || break
  if ((minutes > 0 && SECONDS - start >= minutes * 60)); then
    echo "fuzz: stopping after $minutes minutes"
    break
  fi
done

echo
all=0
for k in "${kinds[@]}"; do
  all=$((all + tried[$k]))
  echo "fuzz: $k: ${tried[$k]} profiles tried (${valid[$k]} valid, ${invalid[$k]} invalid)"
done
echo "fuzz: $all profiles tried in $((SECONDS - start))s"
if ((failed)); then
  echo "fuzz: FAILED; the failures, with their minimal inputs (whole output in $log):"
  sed -n '/^failures:$/,/^test result/p' "$log"
  exit 1
fi
echo "fuzz: no failures"
