#!/usr/bin/env bash
# Status of one SGE job: qstat while queued/running, then qacct's exit_status.
jobid=$1
if qstat -j "$jobid" >/dev/null 2>&1; then
    echo running
    exit 0
fi
code=$(qacct -j "$jobid" 2>/dev/null | awk '/^exit_status/ {print $2}' | tail -n 1)
failed=$(qacct -j "$jobid" 2>/dev/null | awk '/^failed/ {print $2}' | tail -n 1)
if [ -z "$code" ]; then
    echo running   # accounting file not written yet
elif [ "$code" = 0 ] && [ "${failed:-0}" = 0 ]; then
    echo success
else
    echo failed
fi
