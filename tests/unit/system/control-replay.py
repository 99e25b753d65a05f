#!/usr/bin/env python3
"""control-replay.py - replay the QMP sessions of docs/control.md against the real binaries.

Usage: control-replay.py DOC BUILD_DIR

Each session in DOC is an HTML comment naming the binary and its arguments,
followed by a fenced block of "-> request" and "<- reply" lines:

    <!-- replay: vdisk-vmm --drive driver=null,size=1M,if=none,id=disk0 -->
    ```
    <- {"QMP": ...}
    -> {"execute": "qmp_capabilities"}
    <- {"return": {}}
    ```

vdisk-vmm is started with "--control unix:TMP", vdisk-vhost with QEMU's
spelling "--qmp unix:TMP,server,wait=off" and "--socket TMP"; every "->" line is piped through `socat - UNIX-CONNECT:`
(which then shuts down its sending side, so the server answers everything and
closes), and the replies must equal the "<-" lines, in order, as JSON values.
In an expected object, a member "...": "..." allows further members, and
the numbers inside "timestamp" are not compared.  A session that does not
quit is ended with SIGTERM; either way the binary must exit with status 0.
Exit status: 0 if every session matched, 1 otherwise, 77 without socat.
"""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BINARIES = {"vdisk-vmm": "system/vdisk-vmm", "vdisk-vhost": "tools/vdisk-vhost"}
SESSION = re.compile(r"<!-- replay: (.*?) -->\s*```[a-z]*\n(.*?)```", re.S)


def matches(expected, actual, in_timestamp=False):
    """True if actual is the value the transcript shows (see the module comment)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        open_ended = expected.get("...") == "..."
        keys = set(expected) - {"..."}
        if not keys <= set(actual) or (not open_ended and set(actual) != keys):
            return False
        return all(matches(expected[k], actual[k], in_timestamp or k == "timestamp") for k in keys)
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(matches(e, a, in_timestamp) for e, a in zip(expected, actual)))
    if in_timestamp and isinstance(expected, int) and isinstance(actual, int):
        return True
    return type(expected) is type(actual) and expected == actual


def wait_for(path, proc, seconds=20.0):
    """Wait until the binary listens on path (or dies)."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def replay(build, command, body, tmp):
    """Run one session; returns a list of mismatch descriptions (empty if it matched)."""
    args = shlex.split(command)
    qmp = os.path.join(tmp, "qmp.sock")
    argv = [os.path.join(build, BINARIES[args[0]])] + args[1:]
    if args[0] == "vdisk-vhost":
        argv += ["--socket", os.path.join(tmp, "vhost.sock"), "--qmp", "unix:%s,server,wait=off" % qmp]
    else:
        argv += ["--control", "unix:" + qmp]
    requests, expected = [], []
    for line in body.splitlines():
        if line.startswith("-> "):
            requests.append(line[3:])
        elif line.startswith("<- "):
            expected.append(json.loads(line[3:]))
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if not wait_for(qmp, proc):
            return ["%s: no control socket (%s)" % (command, proc.stderr.read() if proc.poll() is not None else "")]
        out = subprocess.run(["socat", "-t", "10", "-", "UNIX-CONNECT:" + qmp], input="\n".join(requests) + "\n",
                             capture_output=True, text=True, timeout=60).stdout
        replies = [json.loads(l) for l in out.splitlines() if l.strip()]
        errors = []
        for i in range(max(len(expected), len(replies))):
            e = expected[i] if i < len(expected) else None
            a = replies[i] if i < len(replies) else None
            if e is None or a is None or not matches(e, a):
                errors.append("%s: reply %d\n  expected %s\n  got      %s" % (command, i + 1, json.dumps(e),
                                                                               json.dumps(a)))
        if proc.poll() is None and not any(r.startswith('{"execute": "quit"') for r in requests):
            proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=30)
        if status != 0:
            errors.append("%s: exit status %d: %s" % (command, status, proc.stderr.read()))
        return errors
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    doc, build = sys.argv[1], sys.argv[2]
    if not shutil.which("socat"):
        print("control-replay: socat not found (scripts/install-deps.sh installs it)")
        return 77
    with open(doc, encoding="utf-8") as f:
        sessions = SESSION.findall(f.read())
    if not sessions:
        print("control-replay: no sessions in %s" % doc)
        return 1
    failures = []
    for command, body in sessions:
        with tempfile.TemporaryDirectory(prefix="vdisk-replay-") as tmp:
            failures += replay(build, command, body, tmp)
    for msg in failures:
        print(msg)
    print("control-replay: %d sessions, %d mismatches" % (len(sessions), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
