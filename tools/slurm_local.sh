#!/usr/bin/env bash
# A Slurm cluster on this machine, for the scheduling tests (tests/jobs, tests/recipes) and for trying
# the recipes' --cmd slurm without a cluster.  Debian's slurm-wlm + munge, started as root: munged as
# the munge user, then slurmctld and slurmd with a config of their own (nothing in /etc/slurm is
# touched).  Each node declares more than the machine has (SlurmdParameters=config_overrides): 64
# CPUs, 1 TB and 8 GPUs, the GPUs being gres whose device files are placeholders (character devices
# like /dev/null: slurmd refuses plain files), so that --gres gpu:N, --cpus-per-gpu, --mem-per-gpu,
# --dependency and arrays behave as on an 8-GPU cluster node (Slurm sets CUDA_VISIBLE_DEVICES per
# job) while the jobs run here.
#
#   tools/slurm_local.sh start [DIR]    start it (idempotent: a running one is reused); prints the
#                                        line to eval: export SLURM_CONF=DIR/slurm.conf
#   tools/slurm_local.sh stop [DIR]     stop the daemons started from DIR
#   tools/slurm_local.sh status [DIR]   exit 0 when the cluster answers and its nodes are usable
#
# DIR defaults to $SEDTK_SLURM_DIR, else /tmp/sedtk-slurm (config, state, logs, the job completion
# log jobcomp.log with every finished job's resources and times).  SEDTK_SLURM_NODES=N (default 1)
# makes N such nodes (n1..nN, each a slurmd of its own on this machine) for multi-node jobs;
# SEDTK_SLURM_PORT (default 6817) moves the daemons' ports, so that two clusters can run side by side.
# Exit status 3: Slurm cannot start here (not installed, not root, or a daemon failed; the reason is
# printed) -- tests skip on it.  Install it with: apt-get install slurm-wlm munge (what .ci/run does).
set -euo pipefail

action=${1:-start}
dir=${2:-${SEDTK_SLURM_DIR:-/tmp/sedtk-slurm}}
conf=$dir/slurm.conf
host=$(hostname -s)
nodes=${SEDTK_SLURM_NODES:-1}
port=${SEDTK_SLURM_PORT:-6817}
export SLURM_CONF=$conf

cannot() {
  echo "slurm_local.sh: cannot start Slurm here: $*" >&2
  exit 3
}

# node_names: the nodes, one per line (this machine's name for a one-node cluster)
node_names() { if [ "$nodes" -eq 1 ]; then echo "$host"; else seq -f 'n%g' 1 "$nodes"; fi; }

answers() {
  # slurmctld answers and every node is idle/mixed/allocated (not down or drained)
  scontrol ping 2>/dev/null | grep -q "is UP" || return 1
  [ "$(sinfo -h -N -o '%T' 2>/dev/null | grep -cE '^(idle|mixed|allocated|completing)')" -ge "$nodes" ]
}

write_conf() {
  local i n name
  mkdir -p "$dir"/{state,spool,log,gpu}
  # Placeholder GPU devices: slurmd wants character devices (these are /dev/null's, major 1 minor 3).
  for i in $(seq 0 $((8 * nodes - 1))); do
    [ -c "$dir/gpu/nvidia$i" ] || { rm -f "$dir/gpu/nvidia$i"; mknod "$dir/gpu/nvidia$i" c 1 3; } ||
      cannot "mknod $dir/gpu/nvidia$i failed (placeholder GPU devices)"
  done
  cat > "$conf" <<EOF
# written by tools/slurm_local.sh: a test cluster of $nodes node(s) on this machine
ClusterName=sedtk
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=$port
SlurmdPort=$((port + 1))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.%n.log
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
EOF
  : > "$dir/gres.conf"
  n=0
  while read -r name; do
    # a typical 8-GPU server; with several nodes each has a slurmd and a port of its own here
    echo "NodeName=$name NodeHostname=$host NodeAddr=127.0.0.1 Port=$((port + 2 + n)) CPUs=64 Boards=1" \
      "SocketsPerBoard=2 CoresPerSocket=32 ThreadsPerCore=1 RealMemory=1000000 Gres=gpu:8 State=UNKNOWN" \
      >> "$conf"
    echo "NodeName=$name Name=gpu File=$dir/gpu/nvidia[$((8 * n))-$((8 * n + 7))]" >> "$dir/gres.conf"
    mkdir -p "$dir/spool/$name"
    n=$((n + 1))
  done < <(node_names)
  echo "PartitionName=gpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP" >> "$conf"
}

start() {
  local exe name
  if [ -f "$conf" ] && answers; then
    echo "export SLURM_CONF=$conf"
    return 0
  fi
  for exe in slurmctld slurmd munged; do
    command -v "$exe" >/dev/null 2>&1 || cannot "$exe is not installed (apt-get install slurm-wlm munge)"
  done
  [ "$(id -u)" -eq 0 ] || cannot "the daemons must be started as root (this is uid $(id -u))"
  stop_daemons quiet
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
  slurmctld -c -f "$conf" || cannot "slurmctld failed (see $dir/log/slurmctld.log)"
  while read -r name; do
    slurmd -f "$conf" -N "$name" || cannot "slurmd of $name failed (see $dir/log/slurmd.$name.log)"
  done < <(node_names)
  for _ in $(seq 100); do answers && break; sleep 0.2; done
  if ! answers; then
    while read -r name; do
      scontrol update nodename="$name" state=resume >/dev/null 2>&1 || true
    done < <(node_names)
    sleep 1
    answers || cannot "nodes not usable: $(sinfo -h -N -o '%N %T %E' 2>&1 | tr '\n' ';') (logs in $dir/log)"
  fi
  echo "export SLURM_CONF=$conf"
}

stop_daemons() {
  local f pid
  for f in "$dir"/slurmd*.pid "$dir/slurmctld.pid"; do
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
