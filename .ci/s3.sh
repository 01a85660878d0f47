#!/usr/bin/env bash
# Starts a local S3-compatible server (versitygw's POSIX gateway) for the
# blob tests and prints, on its last line, the SWITCHBOARD_TEST_S3_URL to
# use. Idempotent: if the gateway already answers on the port, it only
# prints the URL. The credentials are for this throwaway test server only.
#
#   export SWITCHBOARD_TEST_S3_URL="$(bash .ci/s3.sh | tail -n 1)"
set -euo pipefail

VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"
ADDR=127.0.0.1:7070
ACCESS_KEY=switchboard-test
SECRET_KEY=switchboard-test-secret
REGION=us-east-1
BASE="${TMPDIR:-/tmp}/switchboard-s3"
DATA="$BASE/data"
LOG="$BASE/versitygw.log"
PIDFILE="$BASE/versitygw.pid"
URL="s3://switchboard-test?endpoint=${ADDR}&insecure=true&region=${REGION}&access_key=${ACCESS_KEY}&secret_key=${SECRET_KEY}"

# /health is served without authentication (--health below).
up() { curl -fsS -o /dev/null --max-time 2 "http://${ADDR}/health" 2>/dev/null; }

if up; then
	echo "versitygw already answering on ${ADDR}" >&2
	echo "$URL"
	exit 0
fi

BIN="$(go env GOPATH)/bin/versitygw"
if [[ ! -x "$BIN" ]]; then
	echo "installing versitygw ${VERSITYGW_VERSION} into $(go env GOPATH)/bin" >&2
	# Run outside the module so its go.mod is neither read nor changed.
	(cd "${TMPDIR:-/tmp}" && GOFLAGS= go install "github.com/versity/versitygw/cmd/versitygw@${VERSITYGW_VERSION}")
fi

# Object metadata (content type, ETag) goes to a sidecar directory rather
# than user xattrs, so the gateway works on any file system TMPDIR is on.
mkdir -p "$DATA" "$BASE/meta"

# setsid detaches the gateway from this script's process group, so it
# outlives the shell that ran s3.sh (CI runs the tests afterwards).
setsid "$BIN" \
	--port "$ADDR" \
	--access "$ACCESS_KEY" --secret "$SECRET_KEY" \
	--region "$REGION" \
	--health /health \
	--quiet \
	posix --sidecar "$BASE/meta" "$DATA" \
	>"$LOG" 2>&1 </dev/null &
echo $! >"$PIDFILE"

for _ in $(seq 1 100); do
	if up; then
		echo "versitygw (pid $(cat "$PIDFILE")) serving ${DATA} on ${ADDR}; log ${LOG}" >&2
		echo "$URL"
		exit 0
	fi
	if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
		echo "versitygw exited; log follows:" >&2
		cat "$LOG" >&2
		exit 1
	fi
	sleep 0.1
done
echo "versitygw did not answer on ${ADDR} within 10s; log follows:" >&2
cat "$LOG" >&2
exit 1
