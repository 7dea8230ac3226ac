#!/usr/bin/env bash
# Stop the one-node SLURM cluster of start-slurm.sh by the PIDs it recorded (slurmd, slurmctld,
# then munged). Leaves the packages and /etc/slurm/slurm.conf in place.
set -uo pipefail
RUN=${SXT_SLURM_RUN:-/run/sxt-slurm}
for name in slurmd slurmctld munged; do
    pidfile="$RUN/$name.pid"
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        echo "stop-slurm.sh: stopped $name ($pid)"
    fi
    rm -f "$pidfile"
done
