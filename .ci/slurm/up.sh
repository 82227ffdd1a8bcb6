#!/usr/bin/env bash
# Bring up a private single-node Slurm cluster on loopback for CI tests.
#
#   eval "$(.ci/slurm/up.sh)"        # or: .ci/slurm/up.sh && . "${SLURM_STATE:-/tmp/ws-slurm}/env"
#
# Everything lives under $SLURM_STATE (default /tmp/ws-slurm): slurm.conf, a private munge key
# and socket, spool, state, logs, PID files. Daemons started: munged, slurmctld, slurmd; their
# PIDs are recorded in $SLURM_STATE/pids (".ci/slurm/down.sh" stops exactly those).
# stdout carries only `export SLURM_CONF=...`; progress goes to stderr.
# Exit 0: node idle and a probe job ran (checked by the file it wrote).
# Exit 1: one line on stderr, "slurm-up: cannot start: <reason>", so CI can skip Slurm tests.
# Idempotent: if the recorded daemons are alive and answer, nothing new is started.
# Env: SLURM_STATE, SLURM_UP_TIMEOUT (s, default 60), SLURM_CTLD_PORT (6817), SLURMD_PORT (6818).
set -uo pipefail
export PATH="$PATH:/usr/sbin:/sbin" # the daemons live in /usr/sbin

STATE=${SLURM_STATE:-/tmp/ws-slurm}
TIMEOUT=${SLURM_UP_TIMEOUT:-60}
CTLD_PORT=${SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${SLURMD_PORT:-6818}
NODE=localhost # the machine's hostname is not "localhost": slurmd is started with -N localhost
CONF=$STATE/slurm.conf
PIDS=$STATE/pids
MUNGE_DIR=$STATE/munge
MUNGE_SOCK=$MUNGE_DIR/munge.socket.2
T0=$(date +%s.%N)

log() { echo "slurm-up: $*" >&2; }
phase() { [ -d "$STATE/log" ] && echo "$(date +%T.%N | cut -c1-12) $*" >>"$STATE/log/up.log"; return 0; }
STARTED=() # "name pid" of daemons started by this run, stopped again if the run fails
die() {
  local reason=$1 logfile=${2:-}
  if [ -n "$logfile" ] && [ -s "$logfile" ]; then
    tail -n 15 "$logfile" | sed 's/^/  | /' >&2
  fi
  local entry
  for entry in "${STARTED[@]}"; do
    kill -TERM "${entry#* }" 2>/dev/null || true
  done
  [ ${#STARTED[@]} -gt 0 ] && sleep 1
  echo "slurm-up: cannot start: $reason" >&2
  exit 1
}

# A recorded PID counts as ours only if it runs the expected program with our state dir in its
# command line (guards against PID reuse and against other Slurm/munge instances).
ours() { # name pid
  local name=$1 pid=$2
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE/"
}
recorded_pid() { [ -f "$PIDS" ] && awk -v n="$1" '$1 == n { p = $2 } END { print p }' "$PIDS"; }
record() { # name pid
  local tmp=$PIDS.tmp
  { [ -f "$PIDS" ] && awk -v n="$1" '$1 != n' "$PIDS"; echo "$1 $2"; } >"$tmp" && mv "$tmp" "$PIDS"
  STARTED+=("$1 $2")
}
wait_pidfile() { # name pidfile seconds -> prints pid
  local name=$1 file=$2 i pid
  for ((i = 0; i < $3 * 10; i++)); do
    pid=$(cat "$file" 2>/dev/null | tr -dc 0-9)
    if [ -n "$pid" ] && ours "$name" "$pid"; then echo "$pid"; return 0; fi
    sleep 0.1
  done
  return 1
}
emit_env() {
  printf 'export SLURM_CONF=%q\n' "$CONF" >"$STATE/env"
  cat "$STATE/env"
}

# --- 1. packages -------------------------------------------------------------------------------
need_install=0
for c in munged slurmctld slurmd sbatch srun sinfo squeue scontrol; do
  command -v "$c" >/dev/null 2>&1 || need_install=1
done
ls /usr/lib/*/slurm-wlm/proctrack_linuxproc.so >/dev/null 2>&1 || need_install=1
if [ "$need_install" = 1 ]; then
  [ "$(id -u)" = 0 ] || die "Slurm is not installed and we are not root to apt-get it"
  command -v apt-get >/dev/null 2>&1 || die "Slurm is not installed and apt-get is missing"
  log "installing slurmctld slurmd slurm-client munge (apt-get)"
  apt_log=$(mktemp /tmp/ws-slurm-apt.XXXXXX)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends slurmctld slurmd slurm-client munge; } >"$apt_log" 2>&1; then
    die "apt-get install slurmctld slurmd slurm-client munge failed (log: $apt_log)" "$apt_log"
  fi
  rm -f "$apt_log"
fi
[ "$(id -u)" = 0 ] || die "must run as root (slurmd runs jobs as their submitting user)"
id munge >/dev/null 2>&1 || die "user 'munge' is missing (munge package not configured?)"

mkdir -p "$STATE" || die "cannot create state dir $STATE"
STATE=$(cd "$STATE" && pwd -P)
CONF=$STATE/slurm.conf PIDS=$STATE/pids MUNGE_DIR=$STATE/munge MUNGE_SOCK=$STATE/munge/munge.socket.2

# One up.sh at a time per state dir. The daemons must not inherit fd 9 (they are started with
# 9>&-), or they would hold the lock for ever and the next up.sh would wait for nothing.
exec 9>"$STATE/.lock"
flock -w "$TIMEOUT" 9 || die "another up.sh holds $STATE/.lock"

# --- 2. already up? ----------------------------------------------------------------------------
all_alive=1 any_alive=0
for n in munged slurmctld slurmd; do
  if ours "$n" "$(recorded_pid "$n")"; then any_alive=1; else all_alive=0; fi
done
if [ "$all_alive" = 1 ] && SLURM_CONF=$CONF timeout 10 scontrol ping 2>/dev/null | grep -q UP; then
  log "already running (pids: $(tr '\n' ' ' <"$PIDS"))"
  emit_env
  exit 0
fi
if [ "$any_alive" = 1 ]; then # a partial set from an earlier run: stop it, then start afresh
  log "stopping a partial earlier set"
  SLURM_STATE=$STATE "$(dirname "$0")/down.sh" >&2 9>&- || true
fi

# --- 3. config ---------------------------------------------------------------------------------
mkdir -p "$STATE"/{ctld,spool,log,run,jobs} || die "cannot create dirs under $STATE"
phase "up.sh $$ starting (script began $(date -d "@$T0" +%T.%N | cut -c1-12))"
# munged is strict: its dir must belong to munge, be 0711 (clients need x to reach the socket,
# 0700 fails: "Socket is inaccessible"), and the key must be munge-owned and private.
install -d -o munge -g munge -m 0711 "$MUNGE_DIR" || die "cannot create $MUNGE_DIR"
if [ ! -s "$MUNGE_DIR/munge.key" ]; then
  dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none || die "cannot write munge key"
fi
chown munge:munge "$MUNGE_DIR/munge.key" && chmod 0400 "$MUNGE_DIR/munge.key" || die "cannot chown munge key"

# Real CPU count and memory, as slurmd itself sees them. RealMemory at 90 %: a value above what
# slurmd measures drains the node ("Low RealMemory").
hw=$(slurmd -C 2>/dev/null | head -n 1)
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$hw"; }
cpus=$(field CPUs) mem=$(field RealMemory)
# The topology too: with CPUs= alone Slurm assumes one core per socket and slurmd logs
# "Node reconfigured socket/core boundaries".
topo=""
for f in Boards SocketsPerBoard CoresPerSocket ThreadsPerCore; do
  v=$(field $f)
  [ -n "$v" ] && topo="$topo $f=$v"
done
[ -n "$cpus" ] || { cpus=$(nproc); topo=""; }
[ -n "$mem" ] || mem=$(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo)
mem=$((mem * 9 / 10))

: >"$STATE/plugstack.conf"
cat >"$CONF.tmp" <<EOF
# Generated by .ci/slurm/up.sh: private single-node cluster on loopback, no systemd, no cgroups.
ClusterName=warmstart-ci
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCK
CommunicationParameters=NoInAddrAny
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$STATE/plugstack.conf
# Without cgroups: proctrack/cgroup (the default) makes jobs "COMPLETE" without ever running.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
# Per-core scheduling so stages run side by side (select/linear gives each job the whole node).
# CR_Core, not CR_Core_Memory: with memory as a resource a job without --mem takes all of it.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
ReturnToService=2
SlurmctldTimeout=10
SlurmdTimeout=10
MessageTimeout=10
InactiveLimit=0
KillWait=5
Waittime=0
MinJobAge=600
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$cpus$topo RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=60 State=UP
EOF
mv "$CONF.tmp" "$CONF"
phase "config written"
export SLURM_CONF=$CONF

# --- 4. daemons --------------------------------------------------------------------------------
busy=$(ss -ltnH "( sport = :$CTLD_PORT or sport = :$SLURMD_PORT )" 2>/dev/null | awk '{ print $4 }' | tr '\n' ' ')
[ -z "$busy" ] || die "port already in use: $busy(another Slurm? set SLURM_CTLD_PORT/SLURMD_PORT)"

rm -f "$MUNGE_DIR/munged.pid" "$STATE/run/slurmctld.pid" "$STATE/run/slurmd.pid"
runuser -u munge -- munged --socket="$MUNGE_SOCK" --key-file="$MUNGE_DIR/munge.key" \
  --pid-file="$MUNGE_DIR/munged.pid" --log-file="$MUNGE_DIR/munged.log" \
  --seed-file="$MUNGE_DIR/munged.seed" >>"$STATE/log/munged.start" 2>&1 9>&- ||
  die "munged failed to start" "$STATE/log/munged.start"
pid=$(wait_pidfile munged "$MUNGE_DIR/munged.pid" 10) || die "munged wrote no PID file" "$MUNGE_DIR/munged.log"
record munged "$pid"
phase "munged $pid"
munge -n -S "$MUNGE_SOCK" 2>/dev/null | unmunge -S "$MUNGE_SOCK" >/dev/null 2>&1 ||
  die "munge credential round trip failed" "$MUNGE_DIR/munged.log"

slurmctld -f "$CONF" >>"$STATE/log/slurmctld.start" 2>&1 9>&- || die "slurmctld failed to start" "$STATE/log/slurmctld.log"
pid=$(wait_pidfile slurmctld "$STATE/run/slurmctld.pid" 15) || die "slurmctld exited or wrote no PID file" "$STATE/log/slurmctld.log"
record slurmctld "$pid"
phase "slurmctld $pid"

slurmd -f "$CONF" -N "$NODE" >>"$STATE/log/slurmd.start" 2>&1 9>&- || die "slurmd failed to start" "$STATE/log/slurmd.log"
pid=$(wait_pidfile slurmd "$STATE/run/slurmd.pid" 15) || die "slurmd exited or wrote no PID file" "$STATE/log/slurmd.log"
record slurmd "$pid"
phase "slurmd $pid"

# --- 5. wait until usable ----------------------------------------------------------------------
deadline=$(($(date +%s) + TIMEOUT))
resumed=0
state=""
while :; do
  for n in munged slurmctld slurmd; do
    ours "$n" "$(recorded_pid "$n")" || die "$n died during start-up" "$STATE/log/$n.log"
  done
  state=$(timeout 5 sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n 1)
  case "$state" in
    idle) break ;;
    *drain* | down*)
      # Left down/drained by an earlier run's test (recovered from $STATE/ctld): resume once.
      if [ "$resumed" = 0 ]; then
        log "node is '$state' ($(scontrol show node "$NODE" 2>/dev/null | sed -n 's/.*Reason=\(.*\)/\1/p')): resuming"
        timeout 5 scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
        resumed=1
      fi ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || die "node $NODE not idle after ${TIMEOUT}s (state '${state:-no answer}')" "$STATE/log/slurmctld.log"
  sleep 0.2
done

phase "node idle"
# Probe with a batch job, the path the pipeline uses (srun's allocation path is scheduled at
# once, batch jobs only by the scheduler loop, whose first pass after slurmctld starts can lag
# ~2-3 s). Judge by the artefact, not by Slurm's word: the probe must write its file (with a
# broken proctrack Slurm reports COMPLETED 0:0 for jobs that never ran). Poll the file and
# squeue ourselves: sbatch --wait polls every 2-10 s.
probe=$STATE/jobs/probe.$$
rm -f "$probe"
jid=$(timeout 10 sbatch --parsable -J ws-probe -t 1 -o /dev/null -e "$STATE/log/probe.err" \
  --wrap "echo ok >'$probe'" 2>>"$STATE/log/probe.err") || die "sbatch of the probe job failed" "$STATE/log/probe.err"
jid=${jid%%;*}
while :; do
  if [ "$(cat "$probe" 2>/dev/null)" = ok ]; then
    jstate=$(timeout 5 squeue -h -t all -j "$jid" -o %T 2>/dev/null)
    case "$jstate" in PENDING | RUNNING | CONFIGURING | COMPLETING) ;; *) break ;; esac
  fi
  [ "$(date +%s)" -lt "$deadline" ] ||
    die "probe job $jid did not run within ${TIMEOUT}s (state '$(squeue -h -t all -j "$jid" -o '%T %r' 2>/dev/null)')" "$STATE/log/slurmd.log"
  sleep 0.1
done
rm -f "$probe"
phase "probe job $jid done"

log "up in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s (node $NODE: $cpus CPUs, ${mem} MB; pids: $(tr '\n' ' ' <"$PIDS"))"
emit_env
