#!/usr/bin/env python3
"""test-summary.py TESTLOG_JSON [MORE_JSON...] - the closing lines of scripts/test.sh.

Every file holds one JSON object per line with "name" and "result" (meson's
testlog.json; the fuzz smoke writes the same shape).

Prints one line per skipped test, "SKIP <name>: <reason>", the reason being
the last line the test printed that starts with "SKIP" (guest tests, the
strace check and vdisk-seq print one before they exit 77).  A skip that gave
no reason is not a skip CI may accept: it is printed as "FAIL <name>:
skipped without printing a reason" and counted as failed.  Then the totals,
exactly "N passed, N failed, N skipped".  Exit status 1 if anything failed.
"""
import json
import re
import sys

SKIP_LINE = re.compile(r"^\s*SKIP\b[:\s]*(.*\S)")


def skip_reason(record):
    """The reason a skipped test printed, or None."""
    reason = None
    for stream in ("stdout", "stderr"):
        for line in (record.get(stream) or "").splitlines():
            m = SKIP_LINE.match(line)
            if m:
                reason = m.group(1)
    return reason


def main(paths):
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    records = []
    for path in paths:
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    for r in records:
        result = r["result"]
        if result in ("OK", "EXPECTEDFAIL"):
            counts["passed"] += 1
        elif result == "SKIP":
            reason = skip_reason(r)
            if reason:
                print(f"SKIP {r['name']}: {reason}")
                counts["skipped"] += 1
            else:
                print(f"FAIL {r['name']}: skipped without printing a reason")
                counts["failed"] += 1
        else:
            counts["failed"] += 1
    print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
