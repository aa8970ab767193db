#!/usr/bin/env bash
# Benchmarks of DESIGN.md's targets, each side by side with what it replaces,
# in one run (hyperfine from Debian's package):
#   - a no-op `launch up` against `docker inspect` of the same container;
#   - a cold `launch up` against `docker run -d` with the same flags;
#   - a folder of 16 profiles, cold, against 16 sequential `docker run -d`;
#   - the peak RSS of a no-op `launch up`.
# Writes the figures to docs/benchmarks.md (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/benchmarks.md}

command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
docker info >/dev/null 2>&1 || scripts/start-docker.sh
cargo build --release --locked
launch=$PWD/target/release/launch

image=launch-bench/busybox:1
work=$(mktemp -d)
cleanup() {
  docker rm -f $(docker ps -aq --filter name=launch-bench-) >/dev/null 2>&1 || true
  docker rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/root/bin" "$work/root/tmp"
cp /bin/busybox "$work/root/bin/"
for a in sh sleep; do ln -s busybox "$work/root/bin/$a"; done
tar -C "$work/root" -c . | docker import - "$image" >/dev/null

profile() { # name port
  cat >"$2" <<TOML
image = "$image"
name = "$1"
pull = "never"
command = ["sleep", "100000"]
shm_size = "64m"
ports = ["127.0.0.1:$3:80"]
env = { BENCH = "1" }
TOML
}
mkdir -p "$work/one" "$work/sixteen"
profile launch-bench-one "$work/one/one.toml" 18901
for i in $(seq 1 16); do profile "launch-bench-$i" "$work/sixteen/p$i.toml" $((18910 + i)); done
run_flags="-d --name launch-bench-one --shm-size 64m -p 127.0.0.1:18901:80 -e BENCH=1 $image sleep 100000"
seq16="for i in \$(seq 1 16); do docker run -d --name launch-bench-\$i --shm-size 64m -p 127.0.0.1:\$((18910 + i)):80 -e BENCH=1 $image sleep 100000 >/dev/null; done"
rm16='docker rm -f $(docker ps -aq --filter name=launch-bench-) >/dev/null 2>&1 || true'

"$launch" up -q "$work/one/one.toml"
hyperfine -N --warmup 3 --runs 30 --export-json "$work/noop.json" \
  -n "launch up (no-op)" "$launch up -q $work/one/one.toml" \
  -n "docker inspect" "docker inspect launch-bench-one"
hyperfine --runs 10 --export-json "$work/cold.json" \
  --prepare "$rm16" \
  -n "launch up (cold)" "$launch up -q $work/one/one.toml" \
  -n "docker run -d" "docker run $run_flags"
hyperfine --runs 5 --export-json "$work/sixteen.json" \
  --prepare "$rm16" \
  -n "launch up DIR (16 profiles, cold)" "$launch up -q $work/sixteen" \
  -n "16 sequential docker run -d" "$seq16"
"$launch" up -q "$work/one/one.toml"
rss_kib=$(/usr/bin/time -f '%M' "$launch" up -q "$work/one/one.toml" 2>&1 >/dev/null | tail -n 1)

python3 - "$work" "$rss_kib" "$out" <<'PY'
import json, platform, subprocess, sys, datetime
work, rss_kib, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def means(name):
    r = json.load(open(f"{work}/{name}.json"))["results"]
    return [(x["command"], x["mean"], x["stddev"]) for x in r]
def ratio(rows): return rows[0][1] / rows[1][1]
noop, cold, sixteen = means("noop"), means("cold"), means("sixteen")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
docker = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True).stdout.strip()
lines = [
    "# Benchmarks", "",
    f"Measured by `scripts/bench.sh` on {datetime.date.today()}: {cpu}, "
    f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, Docker {docker}, release build.", "",
    "| measurement | launch | baseline | ratio | target | met |", "|---|---|---|---|---|---|",
]
def row(title, rows, target):
    r = ratio(rows)
    lines.append(f"| {title} | {rows[0][1]*1000:.1f} ms ± {rows[0][2]*1000:.1f} | {rows[1][0]}: {rows[1][1]*1000:.1f} ms ± {rows[1][2]*1000:.1f} | {r:.2f}× | ≤ {target}× | {'yes' if r <= target else 'no'} |")
row("no-op `launch up`", noop, 0.5)
row("cold `launch up`", cold, 1.05)
row("16 profiles, cold", sixteen, 0.6)
lines.append(f"| peak RSS of a no-op `launch up` | {rss_kib/1024:.1f} MiB | | | ≤ 16 MiB | {'yes' if rss_kib <= 16*1024 else 'no'} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
