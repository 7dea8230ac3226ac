#!/usr/bin/env bash
# Status of one LSF job; accepts "Job <id> is submitted ..." or the bare id.
jobid=$(grep -o '[0-9]\+' <<<"$1" | head -n 1)
state=$(bjobs -noheader -o stat "$jobid" 2>/dev/null | head -n 1)
case "$state" in
    DONE) echo success ;;
    EXIT|ZOMBI|UNKWN) echo failed ;;
    "") echo failed ;;
    *) echo running ;;
esac
