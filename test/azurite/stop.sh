#!/usr/bin/env bash
# Stop an Azurite started by start.sh.
#
# Usage: test/azurite/stop.sh [-d DATA_DIR] [--clean]
#
# Sends SIGTERM to Azurite's process group (data is kept: a SIGTERM'd Azurite
# restarts with everything), waits up to 15s, then SIGKILL. --clean also
# removes the data folder.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data="${AZURITE_DATA:-$here/.data}"
clean=0

while [[ $# -gt 0 ]]; do
  case "$1" in
    -d|--data) data="$2"; shift ;;
    --clean) clean=1 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "stop.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

pidfile="$data/azurite.pid"
# alive PID: running and not a zombie (an orphan may stay a zombie until
# init reaps it, which here takes about a second).
alive() { local st; st="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" && [[ -n "$st" && "$st" != Z ]]; }
if [[ ! -f "$pidfile" ]]; then
  echo "stop.sh: no pid file at $pidfile (not running?)" >&2
else
  pid="$(cat "$pidfile")"
  if alive "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      echo "stop.sh: Azurite (pid $pid) did not exit after SIGTERM; sending SIGKILL" >&2
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "Azurite stopped (pid $pid)" >&2
  else
    echo "stop.sh: Azurite (pid $pid) was not running" >&2
  fi
  rm -f "$pidfile"
fi

if [[ $clean == 1 && -d "$data" ]]; then
  rm -rf "$data"
  echo "removed $data" >&2
fi
