#!/usr/bin/env bash
# Status of one PBS job (qstat -x keeps finished jobs): prints running, success or failed.
jobid=$1
info=$(qstat -x -f "$jobid" 2>/dev/null)
state=$(sed -n 's/^ *job_state = //p' <<<"$info")
code=$(sed -n 's/^ *Exit_status = //p' <<<"$info")
case "$state" in
    F|C) [ "${code:-1}" = 0 ] && echo success || echo failed ;;
    "") echo failed ;;
    *) echo running ;;
esac
