#!/usr/bin/env bash
# Start and stop a local S3 API server (moto_server, from .venv) for the S3
# behaviour suite and the fleet tests. Source it, then:
#   moto_start RUN_DIR   # sets MOTO_PID, MOTO_ENDPOINT; creates bucket $MOTO_BUCKET
#                        # (listens on $MOTO_HOST, default 127.0.0.1)
#   moto_stop            # stops it by its PID
# moto keeps everything in memory: nothing outlives the process.

MOTO_BUCKET="${MOTO_BUCKET:-registry-test}"

moto_start() {
  local run_dir="$1" venv port host="${MOTO_HOST:-127.0.0.1}"
  venv="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv"
  [ -x "$venv/bin/moto_server" ] || { echo "moto_server missing: run scripts/install-test-tools.sh" >&2; return 1; }
  port="$(python3 -c 'import socket, sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1]); s.close()' "$host")"
  # moto_server with its conditional writes made atomic (see the script).
  "$venv/bin/python" "$(dirname "${BASH_SOURCE[0]}")/moto_server.py" -H "$host" -p "$port" >"$run_dir/moto.log" 2>&1 &
  MOTO_PID=$!
  MOTO_ENDPOINT="http://$host:$port"
  export MOTO_PID MOTO_ENDPOINT MOTO_BUCKET
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  local i
  for i in $(seq 1 100); do
    if curl -fsS -o /dev/null "$MOTO_ENDPOINT/" 2>/dev/null; then break; fi
    kill -0 "$MOTO_PID" 2>/dev/null || { cat "$run_dir/moto.log" >&2; return 1; }
    sleep 0.1
  done
  curl -fsS -X PUT -o /dev/null "$MOTO_ENDPOINT/$MOTO_BUCKET" || { echo "cannot create bucket" >&2; return 1; }
}

moto_stop() {
  if [ -n "${MOTO_PID:-}" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
  fi
  MOTO_PID=""
}
