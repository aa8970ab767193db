#!/usr/bin/env bash
# The README's "run" command: builds launch, makes sure Docker answers,
# builds the offline demo image, and runs `launch up` on profiles/demo/ —
# against the real driver on a GPU host, else against a simulated 4-GPU
# host (a fake libnvidia-ml.so.1, device nodes and driver files under a
# temporary root). Then shows what launch and the container see.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building launch"
cargo build --release --locked
launch=target/release/launch

echo "== making sure a Docker daemon answers"
if ! docker info >/dev/null 2>&1; then
  scripts/start-docker.sh
fi

image=launch-demo/busybox:1
if ! docker image inspect "$image" >/dev/null 2>&1; then
  echo "== building the demo image $image offline (busybox, through docker import)"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  tar -C "$root" -c . | docker import - "$image" >/dev/null
fi

flags=()
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "== a real NVIDIA driver answers: using it"
else
  sim=/tmp/launch-demo-host
  echo "== no NVIDIA driver here: simulating a 4-GPU host under $sim"
  rm -rf "$sim"
  scripts/fake-gpu-host.sh "$sim" 4 >/dev/null
  flags=(--nvml-lib "$sim/nvml/libnvidia-ml.so.1" --dev-root "$sim/dev-root" --driver-root "$sim/driver-root")
fi

echo "== launch up profiles/demo/gpu-demo.toml"
"$launch" up "${flags[@]}" profiles/demo/gpu-demo.toml
echo "== launch up again: nothing to do"
"$launch" up "${flags[@]}" profiles/demo/gpu-demo.toml
echo "== launch status"
"$launch" status "${flags[@]}"
echo "== launch gpus"
"$launch" gpus "${flags[@]}"
echo "== launch doctor"
"$launch" doctor "${flags[@]}"
echo "== inside the container"
docker exec gpu-demo sh -c 'ls -l /dev/nvidia*; echo; ls /usr/local/nvidia/lib64 /usr/local/nvidia/bin 2>/dev/null; echo; env | grep -E "^(NVIDIA_[A-Z_]+|CUDA_DEVICE_ORDER|LD_LIBRARY_PATH|PATH)=" | sort; df -h /dev/shm'
echo
echo "Done. Remove the demo container with: $launch down profiles/demo/gpu-demo.toml"
