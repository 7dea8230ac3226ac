#!/usr/bin/env bash
# Status of one SLURM job for the cluster-generic executor: prints running, success or failed.
# squeue knows a job until MinJobAge (default 300 s) after it ended; then sacct, if accounting
# is on. A job neither knows is reported failed (Snakemake polls far more often than MinJobAge).
jobid=${1%%;*}
if state=$(squeue -h -t all -j "$jobid" -o %T 2>/dev/null); then
    state=$(head -n 1 <<<"$state")
else
    state=""
fi
if [ -z "$state" ] && command -v sacct >/dev/null; then
    state=$(sacct -n -X -P -j "$jobid" -o State 2>/dev/null | head -n 1 | cut -d' ' -f1)
fi
case "$state" in
    COMPLETED) echo success ;;
    PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED|REQUEUED|RESIZING|STAGE_OUT|SIGNALING) echo running ;;
    "") echo "status.sh: job $jobid unknown to squeue and sacct" >&2; echo failed ;;
    *) echo failed ;;
esac
