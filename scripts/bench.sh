#!/usr/bin/env bash
# Benchmarks of launch's performance targets, each side by side with what it replaces,
# in one run (hyperfine from Debian's package):
#   - a no-op `launch up` against `docker inspect` of the same container;
#   - the same for a GPU profile (devices mode, 2 of a fake 8-GPU host's GPUs,
#     binds and a port), the host laid out by scripts/fake-gpu-host.sh;
#   - a no-op `launch up DIR` of 16 such GPU profiles against a no-op of one;
#   - a cold `launch up` against `docker run -d` with the same flags;
#   - a folder of 16 profiles, cold, against 16 sequential `docker run -d`;
#   - a recreate under `changed_files = "discard"` of a container with
#     20 000 changed files against one with none, and beside it `docker rm`
#     of such a container against one with none (the daemon's floor);
#   - the peak RSS of a no-op `launch up`;
#   - a leased GPU no-op that takes a sample (the tick of the minute is
#     cleared before each run) against the GPU no-op without a lease;
#   - `launch usage --since 30d` over a store holding 30 days of 8 GPUs
#     sampled every minute (examples/lease_history.rs), and that store's size;
#   - `launch report -o DIR` (page, JSON, text) over that store.
# Writes the figures to docs/benchmarks.md (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/benchmarks.md}

command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
docker info >/dev/null 2>&1 || scripts/start-docker.sh
cargo build --release --locked
cargo build --release --locked --example lease_history
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
for a in sh sleep mkdir seq xargs touch; do ln -s busybox "$work/root/bin/$a"; done
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

# A fake 8-GPU host (fake NVML, device nodes, driver files); launch finds it
# through these variables, which the non-GPU runs ignore.
scripts/fake-gpu-host.sh "$work/gpu" 8 >/dev/null
export LAUNCH_NVML_LIB=$work/gpu/nvml/libnvidia-ml.so.1
export LAUNCH_DEV_ROOT=$work/gpu/dev-root
export LAUNCH_DRIVER_ROOT=$work/gpu/driver-root
mkdir -p "$work/data" "$work/models"
gpu_profile() { # name file port first-gpu
  cat >"$2" <<TOML
image = "$image"
name = "$1"
pull = "never"
command = ["sleep", "100000"]
ports = ["127.0.0.1:$3:80"]
volumes = ["$work/data:/data", "$work/models:/models:ro"]
gpus = { devices = [$4, $((($4 + 1) % 8))], mode = "devices" }
TOML
}
mkdir -p "$work/gpu-one" "$work/gpu-sixteen"
gpu_profile launch-bench-gpu "$work/gpu-one/gpu.toml" 18902 0
for i in $(seq 1 16); do gpu_profile "launch-bench-gpu-$i" "$work/gpu-sixteen/g$i.toml" $((18930 + i)) $((i % 8)); done

# The same GPU profile with a lease, in a state store of its own.
mkdir -p "$work/gpu-leased"
gpu_profile launch-bench-leased "$work/gpu-leased/leased.toml" 18903 2
printf '[lease]\nidle_after = "1d"\n' >>"$work/gpu-leased/leased.toml"
export LAUNCH_STATE_DIR=$work/state
untick="python3 -c \"import sqlite3; c = sqlite3.connect('$work/state/state.db'); c.execute('DELETE FROM ticks'); c.commit()\""

# Recreate: the same container with one env value changed, so each run
# recreates; the prepare step makes the old one (and its changed files).
recreate_profile() { # file rev
  cat >"$1" <<TOML
image = "$image"
name = "launch-bench-rec"
pull = "never"
command = ["sleep", "100000"]
stop_timeout = 0
env = { REV = "$2" }
[recreate]
changed_files = "discard"
TOML
}
mkdir -p "$work/rec-a" "$work/rec-b"
recreate_profile "$work/rec-a/rec.toml" a
recreate_profile "$work/rec-b/rec.toml" b
rec_old="docker rm -f \$(docker ps -aq --filter name=launch-bench-rec) >/dev/null 2>&1; $launch up -q $work/rec-a/rec.toml"
# 20 000 files in 100 folders of 200, in the old container's writable layer.
rec_files="docker exec launch-bench-rec sh -c 'for d in \$(seq 1 100); do mkdir -p /work/\$d && cd /work/\$d && seq 1 200 | xargs touch; done'"

"$launch" up -q "$work/one/one.toml"
hyperfine -N --warmup 3 --runs 30 --export-json "$work/noop.json" \
  -n "launch up (no-op)" "$launch up -q $work/one/one.toml" \
  -n "docker inspect" "docker inspect launch-bench-one"
"$launch" up -q "$work/gpu-one/gpu.toml" "$work/gpu-sixteen"
# Let the 17 new containers settle: the daemon is busy for a few seconds
# after starting them, which would weigh on the first rows only.
sleep 10
# No-ops take milliseconds and the machine is shared: many runs, so that a
# few preempted ones do not decide the ratio.
hyperfine -N --warmup 10 --runs 100 --export-json "$work/gpu-noop.json" \
  -n "launch up (GPU, no-op)" "$launch up -q $work/gpu-one/gpu.toml" \
  -n "docker inspect" "docker inspect launch-bench-gpu"
hyperfine -N --warmup 5 --runs 50 --export-json "$work/gpu-sixteen-noop.json" \
  -n "launch up DIR (16 GPU profiles, no-op)" "$launch up -q $work/gpu-sixteen" \
  -n "launch up (1 GPU profile, no-op)" "$launch up -q $work/gpu-one/gpu.toml"
"$launch" up -q "$work/gpu-leased/leased.toml"
hyperfine -N --warmup 10 --runs 100 --export-json "$work/leased-noop.json" \
  --prepare "$untick" -n "launch up (leased GPU, no-op, one sample)" "$launch up -q $work/gpu-leased/leased.toml" \
  --prepare "$untick" -n "launch up (GPU, no-op)" "$launch up -q $work/gpu-one/gpu.toml"
# 30 days of 8 GPUs sampled every minute, through the tick's own write.
"$PWD/target/release/examples/lease_history" "$work/history" 30 8
store_bytes=$(stat -c %s "$work/history/state.db")
hyperfine -N --warmup 3 --runs 30 --export-json "$work/usage.json" \
  -n "launch usage --since 30d" "env LAUNCH_STATE_DIR=$work/history $launch usage --since 30d"
hyperfine -N --warmup 2 --runs 20 --export-json "$work/report.json" \
  -n "launch report" "$launch report -q --db $work/history/state.db -o $work/board"
# Five runs: each prepares 20 000 files, which takes seconds.
hyperfine --runs 5 --export-json "$work/recreate.json" \
  --prepare "$rec_old && $rec_files" \
  -n "launch up (recreate, 20 000 changed files)" "$launch up -q $work/rec-b/rec.toml" \
  --prepare "$rec_old" \
  -n "launch up (recreate, no changed files)" "$launch up -q $work/rec-b/rec.toml"
# The daemon's own floor: removing the stopped old container alone, with
# its 20 000 files or none, as every recreate must once the new one runs.
rm_prep="docker rm -f \$(docker ps -aq --filter name=launch-bench-rm) >/dev/null 2>&1; docker run -d --name launch-bench-rm $image sleep 100000 >/dev/null"
rm_files="docker exec launch-bench-rm sh -c 'for d in \$(seq 1 100); do mkdir -p /work/\$d && cd /work/\$d && seq 1 200 | xargs touch; done'"
rm_stop="docker stop -t 0 launch-bench-rm >/dev/null"
hyperfine --runs 3 --export-json "$work/remove.json" \
  --prepare "$rm_prep && $rm_files && $rm_stop" \
  -n "docker rm (20 000 changed files)" "docker rm launch-bench-rm" \
  --prepare "$rm_prep && $rm_stop" \
  -n "docker rm (no changed files)" "docker rm launch-bench-rm"
hyperfine --runs 10 --export-json "$work/cold.json" \
  --prepare "$rm16" \
  -n "launch up (cold)" "$launch up -q $work/one/one.toml" \
  -n "docker run -d" "docker run $run_flags"
hyperfine --runs 10 --export-json "$work/sixteen.json" \
  --prepare "$rm16" \
  -n "launch up DIR (16 profiles, cold)" "$launch up -q $work/sixteen" \
  -n "16 sequential docker run -d" "$seq16"
"$launch" up -q "$work/one/one.toml"
rss_kib=$(/usr/bin/time -f '%M' "$launch" up -q "$work/one/one.toml" 2>&1 >/dev/null | tail -n 1)

python3 - "$work" "$rss_kib" "$out" "$store_bytes" <<'PY'
import json, platform, subprocess, sys, datetime
work, rss_kib, out, store_bytes = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def means(name):
    r = json.load(open(f"{work}/{name}.json"))["results"]
    return [(x["command"], x["mean"], x["stddev"]) for x in r]
def ratio(rows): return rows[0][1] / rows[1][1]
def cpu_ms(name, i):
    x = json.load(open(f"{work}/{name}.json"))["results"][i]
    return (x["user"] + x["system"]) * 1000
noop, cold, sixteen = means("noop"), means("cold"), means("sixteen")
gpu_noop, gpu_sixteen, recreate = means("gpu-noop"), means("gpu-sixteen-noop"), means("recreate")
remove = means("remove")
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
row("no-op `launch up`, GPU profile (devices mode, 2 of 8 fake GPUs, binds, a port)", gpu_noop, 0.3)
row("no-op `launch up DIR`, 16 GPU profiles", gpu_sixteen, 2)
row("cold `launch up`", cold, 1.05)
row("16 profiles, cold", sixteen, 0.6)
row("recreate, `changed_files = \"discard\"`, 20 000 changed files", recreate, 1.5)
lines.append(f"| peak RSS of a no-op `launch up` | {rss_kib/1024:.1f} MiB | | | ≤ 16 MiB | {'yes' if rss_kib <= 16*1024 else 'no'} |")
row("no-op `launch up`, leased GPU profile, taking a sample", means("leased-noop"), 2)
usage = means("usage")[0]
lines.append(f"| `launch usage --since 30d`, 30 days of 8 GPUs sampled every minute | {usage[1]*1000:.1f} ms ± {usage[2]*1000:.1f} | | | ≤ 200 ms | {'yes' if usage[1] <= 0.2 else 'no'} |")
board = means("report")[0]
lines.append(f"| `launch report -o DIR` over those 30 days (page, JSON, text) | {board[1]*1000:.1f} ms ± {board[2]*1000:.1f} | | | ≤ 1 s | {'yes' if board[1] <= 1 else 'no'} |")
lines.append(f"| the state store after those 30 days (raw samples kept 14 days, hourly sums) | {store_bytes/1e6:.1f} MB | | | ≤ 20 MB | {'yes' if store_bytes <= 20e6 else 'no'} |")
lines += [
    "",
    "GPU rows run against the fake 8-GPU host of `scripts/fake-gpu-host.sh` (fake",
    "`libnvidia-ml.so.1`, device nodes, driver files); each profile takes 2 GPUs by",
    "index in `devices` mode, with two binds and a port. The recreate rows change one",
    "env value of a container whose writable layer holds 20 000 new files in 100",
    "folders (or none), under `[recreate] changed_files = \"discard\"`.",
    "",
    f"In the recreate rows launch itself used {cpu_ms('recreate', 0):.1f} ms of CPU (user + system) with",
    f"20 000 changed files and {cpu_ms('recreate', 1):.1f} ms with none. Under `discard` launch does not",
    "ask `docker diff`. The rest is the daemon deleting the old container's",
    "writable layer once the new container runs: in the same run, `docker rm` of a",
    f"stopped container took {remove[0][1]*1000:.1f} ms with those 20 000 files and {remove[1][1]*1000:.1f} ms without, a",
    f"difference of {(remove[0][1]-remove[1][1])*1000:.0f} ms. `up` waits for that removal only 50 ms; past them it",
    "returns once the engine has marked the old container for removal, and the",
    f"daemon finishes after launch has exited: launch's difference is {(recreate[0][1]-recreate[1][1])*1000:.0f} ms.",
]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
