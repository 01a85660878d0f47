#!/usr/bin/env bash
# Starts the real mail servers the e-mail tests run against, on loopback
# only, configured entirely from files under ${TMPDIR:-/tmp}/switchboard-mail
# (nothing in /etc is read or changed):
#
#   Dovecot  IMAP  127.0.0.1:1143 (STARTTLS offered), IMAPS 127.0.0.1:1993
#            (self-signed certificate), LMTP 127.0.0.1:2424; one user
#            switchboard / switchboard-test; maildir; INBOX and Processed.
#   Postfix  SMTP  127.0.0.1:2525; mail for any recipient is delivered over
#            LMTP into that user's INBOX (30 MB message size limit).
#
# Idempotent: installs the Debian packages that are missing, starts only
# the servers that do not answer, and prints on its last two lines:
#
#   SWITCHBOARD_TEST_IMAP_URL=imap://switchboard:switchboard-test@127.0.0.1:1143
#   SWITCHBOARD_TEST_SMTP_URL=smtp://127.0.0.1:2525
#
#   eval "$(bash .ci/mail.sh | tail -n 2 | sed 's/^/export /')"
#
# `bash .ci/mail.sh stop` stops both servers. The credentials are for this
# throwaway test server only.
set -euo pipefail

BASE="${TMPDIR:-/tmp}/switchboard-mail"
HOST=127.0.0.1
IMAP_PORT=1143
IMAPS_PORT=1993
LMTP_PORT=2424
SMTP_PORT=2525
MAIL_USER=switchboard
MAIL_PASS=switchboard-test
DOVECOT_CONF="$BASE/dovecot/dovecot.conf"
POSTFIX_DIR="$BASE/postfix/etc"

log() { echo "mail.sh: $*" >&2; }

# greets PORT PREFIX: true when something on HOST:PORT sends a greeting line
# starting with PREFIX within two seconds.
greets() {
	local line
	line=$(timeout 2 bash -c "exec 3<>/dev/tcp/${HOST}/$1 && head -n 1 <&3" 2>/dev/null) || return 1
	[[ $line == "$2"* ]]
}
imap_up() { greets "$IMAP_PORT" '* OK'; }
smtp_up() { greets "$SMTP_PORT" '220'; }
lmtp_up() { greets "$LMTP_PORT" '220'; }

if [[ ${1:-} == stop ]]; then
	[[ -f $DOVECOT_CONF ]] && dovecot -c "$DOVECOT_CONF" stop 2>/dev/null && log "dovecot stopped"
	[[ -d $POSTFIX_DIR ]] && postfix -c "$POSTFIX_DIR" stop 2>/dev/null && log "postfix stopped"
	exit 0
fi

apt_updated=
need_pkg() { # need_pkg COMMAND PACKAGE...
	command -v "$1" >/dev/null 2>&1 && return 0
	if [[ -z $apt_updated ]]; then
		log "apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		apt_updated=1
	fi
	log "installing ${*:2}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${@:2}" >&2
}

# The mail files belong to an unprivileged user: Dovecot refuses mail
# access as root. Without root, everything runs as the caller.
if [[ $(id -u) == 0 ]]; then
	MAIL_UID=nobody MAIL_GID=nogroup LOGIN_USER=dovenull INTERNAL_USER=dovecot
else
	MAIL_UID=$(id -un) MAIL_GID=$(id -gn) LOGIN_USER=$(id -un) INTERNAL_USER=$(id -un)
fi

start_dovecot() {
	need_pkg dovecot dovecot-core dovecot-imapd dovecot-lmtpd
	[[ -x /usr/lib/dovecot/imap ]] || need_pkg /usr/lib/dovecot/imap dovecot-imapd
	[[ -x /usr/lib/dovecot/lmtp ]] || need_pkg /usr/lib/dovecot/lmtp dovecot-lmtpd
	need_pkg openssl openssl

	# The package creates these users; make sure, since Dovecot will not
	# start without them.
	if [[ $(id -u) == 0 ]]; then
		for u in "$LOGIN_USER" "$INTERNAL_USER"; do
			id "$u" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$u"
		done
	fi

	# A Dovecot left running with this configuration but not answering
	# (half-started, wedged) is stopped first: it would refuse a second start.
	[[ -f $DOVECOT_CONF ]] && dovecot -c "$DOVECOT_CONF" stop >/dev/null 2>&1 || true

	mkdir -p "$BASE/dovecot/run" "$BASE/dovecot/state" "$BASE/tls" "$BASE/mail" "$BASE/home"
	chmod 755 "$BASE" "$BASE/mail" "$BASE/home"
	chown "$MAIL_UID:$MAIL_GID" "$BASE/mail" "$BASE/home"
	if [[ $(id -u) == 0 ]] && ! runuser -u "$MAIL_UID" -- test -w "$BASE/mail"; then
		log "user $MAIL_UID cannot write $BASE/mail; set TMPDIR to a directory every user can enter"
		exit 1
	fi
	if [[ ! -s $BASE/tls/cert.pem ]]; then
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=${HOST}" \
			-addext "subjectAltName=IP:${HOST},DNS:localhost" \
			-keyout "$BASE/tls/key.pem" -out "$BASE/tls/cert.pem" 2>/dev/null
		chmod 600 "$BASE/tls/key.pem"
	fi
	printf '%s:{PLAIN}%s\n' "$MAIL_USER" "$MAIL_PASS" >"$BASE/dovecot/users"

	cat >"$DOVECOT_CONF" <<EOF
# Written by .ci/mail.sh; test server only.
base_dir = $BASE/dovecot/run
state_dir = $BASE/dovecot/state
instance_name = switchboard-test
log_path = $BASE/dovecot.log
protocols = imap lmtp
listen = $HOST
default_login_user = $LOGIN_USER
default_internal_user = $INTERNAL_USER
ssl = yes
ssl_cert = <$BASE/tls/cert.pem
ssl_key = <$BASE/tls/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
# LMTP recipients arrive as user@domain; logins are bare user names.
auth_username_format = %Ln
mail_location = maildir:$BASE/mail/%n
mail_uid = $MAIL_UID
mail_gid = $MAIL_GID
first_valid_uid = 0
first_valid_gid = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $BASE/dovecot/users
}
userdb {
  driver = static
  args = uid=$MAIL_UID gid=$MAIL_GID home=$BASE/home/%n
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Processed {
    auto = create
  }
}
service imap-login {
  inet_listener imap {
    address = $HOST
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = $HOST
    port = $IMAPS_PORT
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = $HOST
    port = $LMTP_PORT
  }
}
service auth {
  unix_listener auth-userdb {
    mode = 0666
  }
}
# Tests open many connections at once as the one user.
protocol imap {
  mail_max_userip_connections = 500
}
EOF
	log "starting dovecot (config $DOVECOT_CONF, log $BASE/dovecot.log)"
	# Dovecot daemonises but keeps the standard streams it was given: a pipe
	# there would never close (`bash .ci/mail.sh 2>&1 | tail` would hang).
	if ! dovecot -c "$DOVECOT_CONF" </dev/null >"$BASE/dovecot.start.log" 2>&1; then
		log "dovecot failed to start:"
		cat "$BASE/dovecot.start.log" "$BASE/dovecot.log" >&2 2>/dev/null || true
		exit 1
	fi
	for _ in $(seq 1 100); do imap_up && lmtp_up && return 0; sleep 0.1; done
	log "dovecot did not answer on ${HOST}:${IMAP_PORT} within 10s; log follows:"
	cat "$BASE/dovecot.log" >&2 || true
	exit 1
}

start_postfix() {
	need_pkg postfix postfix
	[[ -d $POSTFIX_DIR ]] && postfix -c "$POSTFIX_DIR" stop >/dev/null 2>&1 || true

	mkdir -p "$POSTFIX_DIR" "$BASE/postfix/spool" "$BASE/postfix/data"
	chown postfix "$BASE/postfix/data"
	cat >"$POSTFIX_DIR/main.cf" <<EOF
# Written by .ci/mail.sh; test server only.
compatibility_level = 3.6
queue_directory = $BASE/postfix/spool
data_directory = $BASE/postfix/data
meta_directory = /etc/postfix
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = $BASE
maillog_file = $BASE/postfix.log
myhostname = switchboard.test
mydomain = switchboard.test
myorigin = \$myhostname
inet_interfaces = $HOST
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Nothing is local: every recipient, whatever its domain, is rewritten (in
# the envelope only, headers untouched) to the test user and handed to
# Dovecot's LMTP.
mydestination =
local_recipient_maps =
relay_domains =
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, reject
recipient_canonical_maps = static:${MAIL_USER}@switchboard.test
recipient_canonical_classes = envelope_recipient
default_transport = lmtp:inet:${HOST}:${LMTP_PORT}
relay_transport = lmtp:inet:${HOST}:${LMTP_PORT}
message_size_limit = 31457280
mailbox_size_limit = 0
smtputf8_enable = yes
biff = no
append_dot_mydomain = no
smtpd_tls_security_level = none
lmtp_tls_security_level = none
EOF
	# No chroot: the queue is a private directory, not /var/spool/postfix.
	cat >"$POSTFIX_DIR/master.cf" <<EOF
${HOST}:${SMTP_PORT} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
lmtp      unix  - - n -  - lmtp
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
	log "starting postfix (config $POSTFIX_DIR, log $BASE/postfix.log)"
	if ! postfix -c "$POSTFIX_DIR" start </dev/null >"$BASE/postfix.start.log" 2>&1; then
		# Postfix reports configuration errors to syslog, or to standard
		# error only when it is a terminal: show them with `script`.
		log "postfix failed to start:"
		script -qc "postfix -c $POSTFIX_DIR check" /dev/null >&2 || true
		cat "$BASE/postfix.start.log" "$BASE/postfix.log" >&2 2>/dev/null || true
		exit 1
	fi
	for _ in $(seq 1 100); do smtp_up && return 0; sleep 0.1; done
	log "postfix did not answer on ${HOST}:${SMTP_PORT} within 10s; log follows:"
	cat "$BASE/postfix.log" >&2 || true
	exit 1
}

if imap_up && lmtp_up; then
	log "dovecot already answering on ${HOST}:${IMAP_PORT}"
else
	start_dovecot
fi
if smtp_up; then
	log "postfix already answering on ${HOST}:${SMTP_PORT}"
else
	start_postfix
fi

echo "SWITCHBOARD_TEST_IMAP_URL=imap://${MAIL_USER}:${MAIL_PASS}@${HOST}:${IMAP_PORT}"
echo "SWITCHBOARD_TEST_SMTP_URL=smtp://${HOST}:${SMTP_PORT}"
