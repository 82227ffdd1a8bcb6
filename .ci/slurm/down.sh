#!/usr/bin/env bash
# Stop the Slurm daemons that .ci/slurm/up.sh started, by the PIDs it recorded in
# $SLURM_STATE/pids (default /tmp/ws-slurm). Jobs still in this cluster are cancelled first so
# their slurmstepd processes end too. Removes nothing: state, logs and config stay for inspection.
set -uo pipefail

STATE=${SLURM_STATE:-/tmp/ws-slurm}
[ -d "$STATE" ] || { echo "slurm-down: no state dir $STATE: nothing to stop" >&2; exit 0; }
STATE=$(cd "$STATE" && pwd -P)
PIDS=$STATE/pids
[ -f "$PIDS" ] || { echo "slurm-down: no $PIDS: nothing to stop" >&2; exit 0; }

ours() { # name pid: the expected program, started with our state dir in its command line
  local name=$1 pid=$2
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE/"
}
pid_of() { awk -v n="$1" '$1 == n { p = $2 } END { print p }' "$PIDS"; }

# Cancel this cluster's jobs while slurmctld is still there (scoped by SLURM_CONF).
if ours slurmctld "$(pid_of slurmctld)" && [ -f "$STATE/slurm.conf" ]; then
  export SLURM_CONF=$STATE/slurm.conf
  jobs=$(timeout 5 squeue -h -o %i 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    echo "slurm-down: cancelling jobs $jobs" >&2
    timeout 5 scancel $jobs 2>/dev/null || true
    for _ in $(seq 50); do
      [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
fi

rc=0
for name in slurmd slurmctld munged; do
  pid=$(pid_of "$name")
  if ! ours "$name" "$pid"; then
    [ -n "$pid" ] && echo "slurm-down: $name (pid $pid) not running" >&2
    continue
  fi
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 100); do ours "$name" "$pid" || break; sleep 0.1; done
  if ours "$name" "$pid"; then
    echo "slurm-down: $name (pid $pid) ignored SIGTERM for 10 s: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null
    sleep 0.5
    ours "$name" "$pid" && { echo "slurm-down: $name (pid $pid) still alive" >&2; rc=1; }
  fi
  echo "slurm-down: stopped $name (pid $pid)" >&2
done
exit $rc
