#!/usr/bin/env bash
# Start Azurite (pinned in test/azurite/package.json) for manual use or the demo.
#
# Usage: test/azurite/start.sh [--foreground] [-d DATA_DIR] [-b BLOB_PORT] [-q QUEUE_PORT] [-t TABLE_PORT]
#
# Defaults: ports 10000/10001/10002 (so UseDevelopmentStorage=true works),
# data in test/azurite/.data. In the background (the default) it writes
# DATA_DIR/azurite.pid and DATA_DIR/azurite.log, waits until the three ports
# accept connections, and prints the connection string; stop it with stop.sh
# and the same -d. With --foreground it runs Azurite in this terminal (Ctrl-C
# stops it). AZURITE_EXTRA_ARGS is appended to Azurite's flags.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data="${AZURITE_DATA:-$here/.data}"
blob=10000 queue=10001 table=10002
foreground=0
timeout_s=30

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --foreground|-f) foreground=1 ;;
    -d|--data) data="$2"; shift ;;
    -b|--blob-port) blob="$2"; shift ;;
    -q|--queue-port) queue="$2"; shift ;;
    -t|--table-port) table="$2"; shift ;;
    -h|--help) usage 0 ;;
    *) echo "start.sh: unknown argument: $1" >&2; usage 2 ;;
  esac
  shift
done

bin="${AZURITE_BIN:-$here/node_modules/.bin/azurite}"
if [[ ! -x "$bin" ]]; then
  echo "start.sh: installing Azurite (npm ci in $here)" >&2
  (cd "$here" && flock .npm-install.lock sh -c '[ -x node_modules/.bin/azurite ] || npm ci --no-audit --no-fund') >&2
fi

mkdir -p "$data"
data="$(cd "$data" && pwd)"
pidfile="$data/azurite.pid"
logfile="$data/azurite.log"

args=(--silent --skipApiVersionCheck --disableTelemetry
      --blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1
      --blobPort "$blob" --queuePort "$queue" --tablePort "$table"
      --location "$data")
# shellcheck disable=SC2206
[[ -n "${AZURITE_EXTRA_ARGS:-}" ]] && args+=($AZURITE_EXTRA_ARGS)

conn="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:$blob/devstoreaccount1;QueueEndpoint=http://127.0.0.1:$queue/devstoreaccount1;TableEndpoint=http://127.0.0.1:$table/devstoreaccount1;"

if [[ $foreground == 1 ]]; then
  echo "Azurite on 127.0.0.1 ports $blob/$queue/$table, data in $data" >&2
  echo "Connection string: $conn" >&2
  exec "$bin" "${args[@]}"
fi

# alive PID: running and not a zombie (a child of ours stays a zombie until we exit,
# an orphan until init reaps it).
alive() { local st; st="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" && [[ -n "$st" && "$st" != Z ]]; }
if [[ -f "$pidfile" ]] && alive "$(cat "$pidfile")"; then
  echo "start.sh: Azurite already running (pid $(cat "$pidfile"), $pidfile)" >&2
  exit 1
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$blob" "$queue" "$table"; do
  if port_open "$p"; then
    echo "start.sh: port $p is already in use" >&2
    exit 1
  fi
done

# setsid: own session and process group, so stop.sh can signal the group.
setsid "$bin" "${args[@]}" </dev/null >"$logfile" 2>&1 &
pid=$!
echo "$pid" >"$pidfile"

deadline=$((SECONDS + timeout_s))
until port_open "$blob" && port_open "$queue" && port_open "$table"; do
  if ! alive "$pid"; then
    echo "start.sh: Azurite exited during startup; log tail:" >&2
    tail -n 20 "$logfile" >&2
    rm -f "$pidfile"
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    echo "start.sh: Azurite not ready after ${timeout_s}s; log tail:" >&2
    tail -n 20 "$logfile" >&2
    kill -TERM -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
    exit 1
  fi
  sleep 0.1
done

echo "Azurite running: pid $pid, ports $blob/$queue/$table, data $data" >&2
echo "$conn"
