#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine for tests/workflow/test_slurm.py (needs root, Debian/Ubuntu).
#
#   sudo tests/cluster/start-slurm.sh      # installs slurm-wlm + munge if missing, starts the daemons
#   tests/cluster/stop-slurm.sh            # stops them again (by PID)
#
# Writes /etc/slurm/slurm.conf (the job step strips SLURM_* variables, so SLURM_CONF cannot be used):
# one node with this machine's CPUs and memory, select/cons_tres, proctrack/linuxproc, task/none,
# no accounting, MinJobAge=300 (the executor plugin falls back to sacct below 3x its status delay).
# PIDs go to $SXT_SLURM_RUN (default /run/sxt-slurm) for stop-slurm.sh.
set -euo pipefail

RUN=${SXT_SLURM_RUN:-/run/sxt-slurm}
PARTITION=${SXT_SLURM_PARTITION:-debug}
CONF=/etc/slurm/slurm.conf

if [ "$(id -u)" -ne 0 ]; then
    echo "start-slurm.sh: needs root (apt-get, /etc/slurm, daemons)" >&2
    exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

mkdir -p "$RUN" /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /var/log/munge /var/lib/munge /etc/munge
id slurm >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin slurm
chown slurm: /var/spool/slurmctld /var/log/slurm

# munge: key readable only by the munge user; munged refuses to run as root.
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
fi
chown -R munge: /etc/munge /run/munge /var/log/munge /var/lib/munge
chmod 0700 /etc/munge /var/log/munge /var/lib/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key

HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 * 0.95)}' /proc/meminfo)

cat > "$CONF" <<CONF
# Written by sxtflow tests/cluster/start-slurm.sh: one node, test use only.
ClusterName=sxttest
SlurmctldHost=${HOST}(127.0.0.1)
AuthType=auth/munge
SlurmUser=slurm
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=${RUN}/slurmctld.pid
SlurmdPidFile=${RUN}/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM_MB} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
CONF
# cons_tres warns without a cgroup.conf on some versions; memory limits are not enforced anyway.

if ! pgrep -u munge -x munged >/dev/null; then
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    sleep 0.5
fi
cp /run/munge/munged.pid "$RUN/munged.pid" 2>/dev/null || pgrep -u munge -x munged | head -1 > "$RUN/munged.pid"

if [ ! -s "$RUN/slurmctld.pid" ] || ! kill -0 "$(cat "$RUN/slurmctld.pid")" 2>/dev/null; then
    slurmctld -c -i  # -c: fresh state, -i: ignore stale state files; daemonises, writes its PID file
fi
if [ ! -s "$RUN/slurmd.pid" ] || ! kill -0 "$(cat "$RUN/slurmd.pid")" 2>/dev/null; then
    slurmd
fi

for _ in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
        sinfo
        echo "start-slurm.sh: node ${HOST} idle (${CPUS} CPUs, ${MEM_MB} MB), partition ${PARTITION}"
        exit 0
    fi
    sleep 1
done
echo "start-slurm.sh: the node did not become idle in 60 s" >&2
sinfo >&2 || true
tail -n 30 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
