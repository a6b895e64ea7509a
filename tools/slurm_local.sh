#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the scheduling tests (tests/jobs, tests/recipes) and
# for trying the recipes' --cmd slurm without a cluster.  Debian's slurm-wlm + munge, started as
# root: munged as the munge user, then slurmctld and slurmd with a config of their own (nothing in
# /etc/slurm is touched).  The node declares more than the machine has (SlurmdParameters=
# config_overrides): 64 CPUs, 1 TB and 8 GPUs, the GPUs being gres whose device files are
# placeholders (character devices like /dev/null: slurmd refuses plain files), so that --gres gpu:N,
# --cpus-per-gpu, --mem-per-gpu, --dependency and arrays behave as on an 8-GPU cluster node (Slurm
# sets CUDA_VISIBLE_DEVICES per job) while the jobs run here.
#
#   tools/slurm_local.sh start [DIR]    start it (idempotent: a running one is reused); prints the
#                                        line to eval: export SLURM_CONF=DIR/slurm.conf
#   tools/slurm_local.sh stop [DIR]     stop the daemons started from DIR
#   tools/slurm_local.sh status [DIR]   exit 0 when the cluster answers and its node is usable
#
# DIR defaults to $SEDTK_SLURM_DIR, else /tmp/sedtk-slurm (config, state, logs, the job completion
# log jobcomp.log with every finished job's resources and times).  Exit status 3: Slurm cannot start
# here (not installed, not root, or a daemon failed; the reason is printed) -- tests skip on it.
# Install it with: apt-get install slurm-wlm munge (what .ci/run does).
set -euo pipefail

action=${1:-start}
dir=${2:-${SEDTK_SLURM_DIR:-/tmp/sedtk-slurm}}
conf=$dir/slurm.conf
node=$(hostname -s)
export SLURM_CONF=$conf

cannot() {
  echo "slurm_local.sh: cannot start Slurm here: $*" >&2
  exit 3
}

answers() {
  # slurmctld answers and the node is idle/mixed/allocated (not down or drained)
  scontrol ping 2>/dev/null | grep -q "is UP" || return 1
  sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated|completing)'
}

write_conf() {
  mkdir -p "$dir"/{state,spool,log,gpu}
  # Placeholder GPU devices: slurmd wants character devices (these are /dev/null's, major 1 minor 3).
  for i in 0 1 2 3 4 5 6 7; do
    [ -c "$dir/gpu/nvidia$i" ] || { rm -f "$dir/gpu/nvidia$i"; mknod "$dir/gpu/nvidia$i" c 1 3; } ||
      cannot "mknod $dir/gpu/nvidia$i failed (placeholder GPU devices)"
  done
  cat > "$conf" <<EOF
# written by tools/slurm_local.sh: a one-node test cluster
ClusterName=sedtk
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=${SEDTK_SLURM_PORT:-6817}
SlurmdPort=$((${SEDTK_SLURM_PORT:-6817} + 1))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.log
SchedulerType=sched/backfill
SchedulerParameters=sched_min_interval=100000
InactiveLimit=0
KillWait=5
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$node NodeAddr=127.0.0.1 CPUs=64 Boards=1 SocketsPerBoard=2 CoresPerSocket=32 ThreadsPerCore=1 RealMemory=1000000 Gres=gpu:8 State=UNKNOWN
PartitionName=gpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  echo "Name=gpu File=$dir/gpu/nvidia[0-7]" > "$dir/gres.conf"
}

start() {
  if [ -f "$conf" ] && answers; then
    echo "export SLURM_CONF=$conf"
    return 0
  fi
  local exe
  for exe in slurmctld slurmd munged; do
    command -v "$exe" >/dev/null 2>&1 || cannot "$exe is not installed (apt-get install slurm-wlm munge)"
  done
  [ "$(id -u)" -eq 0 ] || cannot "the daemons must be started as root (this is uid $(id -u))"
  write_conf
  # munge: the key is made by the package's install; start munged unless one answers already.
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    [ -f /etc/munge/munge.key ] || runuser -u munge -- mungekey --create 2>/dev/null ||
      cannot "no /etc/munge/munge.key (and mungekey failed)"
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 0755 /run/munge
    runuser -u munge -- munged || cannot "munged failed to start (see /var/log/munge/munged.log)"
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || cannot "munged does not answer"
  fi
  stop_daemons quiet
  slurmctld -c -f "$conf" || cannot "slurmctld failed (see $dir/log/slurmctld.log)"
  slurmd -f "$conf" || cannot "slurmd failed (see $dir/log/slurmd.log)"
  for _ in $(seq 100); do answers && break; sleep 0.2; done
  if ! answers; then
    scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
    sleep 1
    answers || cannot "the node is not usable: $(sinfo -h -N -o '%T %E' 2>&1) (logs in $dir/log)"
  fi
  echo "export SLURM_CONF=$conf"
}

stop_daemons() {
  local f pid
  for f in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$f"
  done
  [ "${1:-}" = quiet ] || echo "slurm_local.sh: stopped the daemons of $dir"
}

case "$action" in
  start) start ;;
  stop) stop_daemons ;;
  status) [ -f "$conf" ] && answers ;;
  *) echo "usage: tools/slurm_local.sh start|stop|status [DIR]" >&2; exit 2 ;;
esac
