#!/usr/bin/env python3
"""Verify the first DKIM signature of the message on stdin with dkimpy.

Usage: dkimverify.py NAME RECORD
NAME is the DNS name the record answers for (selector._domainkey.domain),
RECORD the TXT record; no real DNS is queried. Prints "pass" and exits 0,
or prints "fail" (the reason on stderr) and exits 1.
"""
import logging
import sys

import dkim

want_name, record = sys.argv[1], sys.argv[2].encode()


def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    if name.rstrip(".").lower() != want_name.lower():
        print("unexpected lookup of %s" % name, file=sys.stderr)
        return None
    return record


logging.basicConfig(stream=sys.stderr, level=logging.DEBUG)
msg = sys.stdin.buffer.read()
ok = dkim.verify(msg, logger=logging.getLogger("dkim"), dnsfunc=dnsfunc)
print("pass" if ok else "fail")
sys.exit(0 if ok else 1)
