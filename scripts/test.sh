#!/usr/bin/env bash
# Runs Switchboard's whole test suite against real servers: SQLite, and
# PostgreSQL, Redis and an S3-compatible gateway on loopback. It installs
# (Debian packages, go install) and starts whichever of them is missing, so
# it works on a fresh machine as well as on one where they already run.
# This is the README's test command, and CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo /root/go)/bin"

log() { echo "== $*" >&2; }
apt_updated=
need_pkg() { # need_pkg COMMAND PACKAGE...
	command -v "$1" >/dev/null 2>&1 && return 0
	if [[ -z $apt_updated ]]; then apt-get update -qq; apt_updated=1; fi
	log "installing ${*:2}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${@:2}" >/dev/null
}

# PostgreSQL: start the local cluster if it is not answering, then use it
# over the Unix socket as a superuser role named like this OS user, which
# works with Debian's default peer authentication as well as with trust.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
	need_pkg pg_ctlcluster postgresql
	need_pkg pg_isready postgresql-client
	# A fresh install may have started its cluster already.
	if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
		ver=$(ls /etc/postgresql | sort -V | tail -n 1)
		log "starting PostgreSQL $ver"
		pg_ctlcluster --skip-systemctl-redirect "$ver" main start
	fi
	for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi
me=$(id -un)
su postgres -c "psql -q -tAc \"SELECT 1 FROM pg_roles WHERE rolname = '$me'\"" | grep -q 1 ||
	su postgres -c "psql -q -c 'CREATE ROLE \"$me\" SUPERUSER LOGIN'"
psql -q -h /var/run/postgresql -d postgres -c 'DROP DATABASE IF EXISTS switchboard_test' -c 'CREATE DATABASE switchboard_test' >/dev/null
export SWITCHBOARD_TEST_DATABASE_URL="postgres:///switchboard_test?host=/var/run/postgresql&user=$me&sslmode=disable"

# Redis, with nothing kept on disk: the tests need a live server only
# (those that start switchboard on it set SWITCHBOARD_REDIS_ALLOW_VOLATILE).
# Tests that crash Redis or need AOF start a redis-server of their own, so
# the binary is needed even when this server already runs.
need_pkg redis-server redis-server
# (A fresh install may have started its server already.)
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
	log "starting Redis"
	mkdir -p /var/lib/redis /var/log/redis
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
		--dir /var/lib/redis --logfile /var/log/redis/ci.log
	for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi
export SWITCHBOARD_TEST_REDIS_URL="redis://127.0.0.1:6379/0"

# Debian's Chromium for the browser tests (the widget, driven with
# chromedp; internal/browsertest starts it headless with a fresh profile).
need_pkg chromium chromium

# An S3-compatible server (versitygw's POSIX gateway) for the blob tests.
need_pkg curl curl
SWITCHBOARD_TEST_S3_URL="$(bash .ci/s3.sh | tail -n 1)"
export SWITCHBOARD_TEST_S3_URL

# Real mail servers for the e-mail tests: Dovecot (IMAP) and Postfix (SMTP,
# delivering into Dovecot), on loopback ports of their own.
eval "$(bash .ci/mail.sh | tail -n 2 | sed 's/^/export /')"
# An independent DKIM verifier (dkimpy; PyNaCl for ed25519 signatures).
if ! /usr/bin/python3 -c 'import dkim, nacl' >/dev/null 2>&1; then
	if [[ -z $apt_updated ]]; then apt-get update -qq; apt_updated=1; fi
	log "installing python3-dkim python3-nacl"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-dkim python3-nacl >/dev/null
fi

log "go vet"
go vet ./...
log "go test -race"
go test -race -count=1 -timeout 15m ./...
