#!/usr/bin/env python3
"""syslog format: the sample stderr log rewritten as rsyslog writes
PostgreSQL's syslog output gives the same document as the stderr log.

  test_syslog.py LA_CLI DATA_DIR

Each entry becomes "Mmm dd hh:mm:ss host postgres[PID]: [N-1] <line>" and
each of its continuation lines "[N-2]", "[N-3]", ... with the leading tab
written "#011"; lines longer than 900 bytes are cut into 900-byte pieces as
PostgreSQL does (syslog_split_messages). Everything but input.* must match.
"""
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile

PREFIX = '%m [%p] %q%u@%d/%a '
HEAD = re.compile(rb'^\d{4}-\d\d-\d\d (\d\d:\d\d:\d\d)\.\d{3} \w+ \[(\d+)\]')


def pieces(line):
    while len(line) > 900:
        yield line[:900]
        line = line[900:]
    yield line


def main():
    cli, data = sys.argv[1], sys.argv[2]
    with lzma.open(os.path.join(data, 'small.stderr.log.xz')) as f:
        lines = f.read().splitlines()
    # a statement of 3,000 bytes on two lines, to be cut into pieces
    cols = b', '.join(b'col%d' % i for i in range(300))
    lines += [b'2026-11-22 07:52:27.900 UTC [9999] u@db/app LOG:  duration: 1.500 ms  '
              b'statement: SELECT ' + cols, b'\tFROM t WHERE ' + cols.replace(b', ', b' = 1 AND ')]
    out, seq, head, chunk, cut = [], 0, None, 0, 0
    for line in lines:
        m = HEAD.match(line)
        if m:
            seq += 1
            chunk = 0
            head = b'Nov 22 %s db1 postgres[%s]: ' % (m.group(1), m.group(2))
        elif line.startswith(b'\t'):
            line = b'#011' + line[1:]
        for piece in pieces(line):
            chunk += 1
            cut += chunk > 1 and not piece.startswith(b'#011')
            out.append(head + b'[%d-%d] ' % (seq, chunk) + piece)
    d = tempfile.mkdtemp(prefix='la_syslog_')
    failures = []
    try:
        with open(os.path.join(d, 'stderr.log'), 'wb') as f:
            f.write(b'\n'.join(lines) + b'\n')
        with open(os.path.join(d, 'syslog.log'), 'wb') as f:
            f.write(b'\n'.join(out) + b'\n')
        docs = []
        for name, fmt in (('stderr.log', 'stderr'), ('syslog.log', 'auto')):
            params = {'files': [os.path.join(d, name)], 'format': fmt, 'prefix': PREFIX}
            r = subprocess.run([cli, json.dumps(params)], capture_output=True, check=True)
            docs.append(json.loads(r.stdout))
        a, b = docs
        if b['input']['files'][0]['format'] != 'syslog':
            failures.append('auto did not detect syslog: %s' % b['input']['files'][0]['format'])
        if b['input']['unparsed_lines'] != 0:
            failures.append('syslog: %d unparsed lines' % b['input']['unparsed_lines'])
        if cut == 0:
            failures.append('the sample has no line over 900 bytes: cut lines untested')
        for k in a:
            if k != 'input' and a[k] != b[k]:
                failures.append('syslog and stderr differ in %s' % k)
    finally:
        shutil.rmtree(d)
    for f in failures:
        print(f)
    if not failures:
        print('syslog: same figures as stderr (%d lines, %d cut pieces)' % (len(out), cut))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
