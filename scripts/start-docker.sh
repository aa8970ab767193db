#!/usr/bin/env bash
# Makes sure a Docker daemon answers: installs Debian's docker.io (and the
# static busybox the tests and the demo build their images from) when
# missing, and starts dockerd with its own data root and log file when no
# daemon answers. Used by .ci/run and scripts/demo.sh. Needs root for both.
set -euo pipefail

need=()
command -v dockerd >/dev/null || need+=(docker.io)
if ! { [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx tar && ! ldd /bin/busybox >/dev/null 2>&1; }; then
  need+=(busybox-static)
fi
for pkg in "$@"; do
  need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi
state=${LAUNCH_DOCKER_STATE:-/var/tmp/launch-docker}
mkdir -p "$state"
echo "starting dockerd (data root $state/data, log $state/dockerd.log)" >&2
setsid dockerd --data-root "$state/data" --exec-root "$state/exec" \
  --pidfile "$state/dockerd.pid" >"$state/dockerd.log" 2>&1 </dev/null &
for _ in $(seq 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "dockerd did not come up; its log ends with:" >&2
tail -n 40 "$state/dockerd.log" >&2
exit 1
