#!/usr/bin/env bash
# Makes sure Podman's Docker-compatible API answers, for the engine tests'
# second round (.ci/run): installs Debian's podman (and catatonit, its init)
# when missing, and starts `podman system service` on sockets of its own
# when nothing answers there:
#   - the root engine, on unix:///run/launch-podman.sock;
#   - a rootless one, as the user launch-rootless (made here), on its own
#     runtime folder's socket, with the tests' busybox image imported.
# This machine's hard limit on open files is 20000, below Podman's default
# container ulimits, so a containers.conf of launch's own sets ones that fit.
# Writes the two addresses to $state/env (LAUNCH_PODMAN_HOST,
# LAUNCH_ROOTLESS_HOST) for .ci/run to source. Needs root.
set -euo pipefail

state=${LAUNCH_PODMAN_STATE:-/var/tmp/launch-podman}
socket=${LAUNCH_PODMAN_SOCKET:-/run/launch-podman.sock}
user=launch-rootless

if ! command -v podman >/dev/null || [ ! -x /usr/libexec/podman/catatonit ]; then
  echo "installing podman, catatonit" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman catatonit uidmap >/dev/null
fi
mkdir -p "$state"
chmod 755 "$state"
conf=$state/containers.conf
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
cat >"$conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
CONF
chmod 644 "$conf"
export CONTAINERS_CONF=$conf

answers() { DOCKER_HOST="unix://$1" timeout 5 docker version >/dev/null 2>&1; }
wait_for() { # socket log
  for _ in $(seq 30); do
    answers "$1" && return 0
    sleep 1
  done
  echo "podman did not come up on $1; its log ends with:" >&2
  tail -n 20 "$2" >&2
  return 1
}

if ! answers "$socket"; then
  echo "starting podman system service on unix://$socket (log $state/service.log)" >&2
  rm -f "$socket"
  setsid podman system service --time=0 "unix://$socket" >"$state/service.log" 2>&1 </dev/null &
  wait_for "$socket" "$state/service.log"
fi

# Rootless: a user of its own, its runtime folder, its service, its image.
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
uid=$(id -u "$user")
run=/run/user/$uid
mkdir -p "$run"
chown "$user": "$run"
chmod 700 "$run"
rootless=$run/podman.sock
as_user() { runuser -u "$user" -- env XDG_RUNTIME_DIR="$run" CONTAINERS_CONF="$conf" HOME="/home/$user" "$@"; }
if ! answers "$rootless"; then
  echo "starting rootless podman system service as $user on unix://$rootless" >&2
  rm -f "$rootless"
  touch "$state/rootless.log"
  chown "$user" "$state/rootless.log"
  setsid runuser -u "$user" -- env XDG_RUNTIME_DIR="$run" CONTAINERS_CONF="$conf" HOME="/home/$user" \
    podman system service --time=0 "unix://$rootless" >>"$state/rootless.log" 2>&1 </dev/null &
  wait_for "$rootless" "$state/rootless.log"
fi
if ! as_user podman image exists localhost/launch-test/rootless:1 2>/dev/null; then
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs/bin"
  cp /bin/busybox "$rootfs/bin/"
  for applet in sh sleep true; do ln -s busybox "$rootfs/bin/$applet"; done
  tar -C "$rootfs" -cf "$state/rootless.tar" .
  chmod 644 "$state/rootless.tar"
  rm -rf "$rootfs"
  as_user podman import --quiet "$state/rootless.tar" localhost/launch-test/rootless:1 >/dev/null
fi

cat >"$state/env" <<ENV
LAUNCH_PODMAN_HOST=unix://$socket
LAUNCH_ROOTLESS_HOST=unix://$rootless
ENV
echo "podman: unix://$socket (root), unix://$rootless ($user)" >&2
