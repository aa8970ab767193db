#!/usr/bin/env bash
# Makes sure a one-node Slurm controller answers, for `sbatch --test-only`
# on the scripts `launch render --format slurm` writes (tests/it/render_engines.rs).
# Installs Debian's slurmctld, slurm-client and munge when missing, starts
# munged when no credential can be made, and starts slurmctld with its own
# config, state and log under $LAUNCH_SLURM_STATE (default
# /var/tmp/launch-slurm) when it does not answer. No slurmd runs: the one
# node `localhost` (16 CPUs, 64 GiB, 8 GPUs) is a powered-down cloud node,
# which the scheduler plans for but never starts. Tests find the controller
# through $LAUNCH_SLURM_STATE/slurm.conf. Used by .ci/run. Needs root.
set -euo pipefail

need=()
command -v slurmctld >/dev/null || need+=(slurmctld)
command -v sbatch >/dev/null || need+=(slurm-client)
command -v munged >/dev/null || need+=(munge)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

state=${LAUNCH_SLURM_STATE:-/var/tmp/launch-slurm}
export SLURM_CONF="$state/slurm.conf"
answers() {
  [ -f "$SLURM_CONF" ] && scontrol ping 2>/dev/null | grep -q 'is UP'
}
if answers; then
  exit 0
fi

# munge: the package makes /etc/munge/munge.key; the socket dir is a tmpfs
# the init system would make.
if ! munge -n >/dev/null 2>&1; then
  [ -f /etc/munge/munge.key ] || runuser -u munge -- mungekey
  install -d -o munge -g munge -m 0755 /run/munge
  echo "starting munged" >&2
  runuser -u munge -- munged
  for _ in $(seq 20); do
    munge -n >/dev/null 2>&1 && break
    sleep 0.25
  done
  munge -n >/dev/null
fi

mkdir -p "$state/state"
rm -rf "${state:?}/state/"*
cat >"$SLURM_CONF" <<CONF
ClusterName=launch-ci
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
StateSaveLocation=$state/state
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmctldLogFile=$state/slurmctld.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ResumeProgram=/bin/true
SuspendProgram=/bin/true
SuspendTime=600
NodeName=localhost CPUs=16 RealMemory=65536 Gres=gpu:8 State=CLOUD
PartitionName=gpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
echo "NodeName=localhost Name=gpu Count=8" >"$state/gres.conf"
echo "starting slurmctld (config $SLURM_CONF, log $state/slurmctld.log)" >&2
setsid slurmctld -c -f "$SLURM_CONF" >"$state/slurmctld.out" 2>&1 </dev/null &
for _ in $(seq 60); do
  if answers; then
    exit 0
  fi
  sleep 0.5
done
echo "slurmctld did not come up; its log ends with:" >&2
tail -n 40 "$state/slurmctld.log" "$state/slurmctld.out" >&2
exit 1
