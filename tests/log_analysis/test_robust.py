#!/usr/bin/env python3
"""Garbage in, no crash out: log_analysis on binary data, invalid UTF-8,
1 MB lines, truncated lines and a line longer than the read buffer, in each
format. Unrecognised lines must be counted in input.unparsed_lines and the
good lines around them still analysed.

  test_robust.py LA_CLI
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

PREFIX = '%m [%p] %q%u@%d/%a '
failures = []


def check(what, got, want):
    if got != want:
        failures.append('%s: got %r, want %r' % (what, got, want))


def run(cli, path, fmt, **extra):
    params = dict({'files': [path], 'format': fmt, 'prefix': PREFIX, 'threads': 1}, **extra)
    out = subprocess.run([cli, json.dumps(params)], capture_output=True)
    if out.returncode != 0:
        failures.append('%s (%s): exit %d: %s' % (path, fmt, out.returncode, out.stderr[-300:]))
        return None
    return json.loads(out.stdout)  # must be valid JSON, invalid UTF-8 or not


def stderr_line(i, query):
    return (b'2026-11-22 07:51:%02d.%03d UTC [%d] app@shop/psql LOG:  duration: 1.000 ms  '
            b'statement: ' % (i % 60, i % 1000, 100 + i) + query + b'\n')


def main():
    cli = sys.argv[1]
    d = tempfile.mkdtemp(prefix='la_robust_')
    rnd = random.Random(42)
    try:
        # 1. stderr: good lines, garbage lines, invalid UTF-8, a 1 MB garbage
        # line, a 1 MB statement, a line cut short, binary noise
        good = [stderr_line(i, b'SELECT %d FROM t' % i) for i in range(100)]
        body = b''.join(good[:50])
        body += b'this is not a log line\n'
        body += b'\xff\xfe\x00garbage \xc3\x28 invalid utf-8\n'
        body += b'x' * (1 << 20) + b'\n'
        body += stderr_line(500, b'SELECT \xff\xfe \xc3\x28 FROM "t\xe9"')
        body += stderr_line(501, b'SELECT ' + b'1, ' * 350000 + b'1')  # ~1 MB statement
        body += b'2026-11-22 07:51:00.000 UTC [9] LOG:  durat\n'  # truncated: no statement
        body += b''.join(good[50:])
        noise = rnd.randbytes(200000).replace(b'\t', b' ')
        noise_lines = sum(1 for x in noise.split(b'\n') if x)
        body += noise + b'\n'
        p = os.path.join(d, 'garbage.log')
        with open(p, 'wb') as f:
            f.write(body)
        doc = run(cli, p, 'stderr')
        if doc:
            check('stderr statements', doc['queries']['total'], 102)
            check('stderr unparsed lines', doc['input']['unparsed_lines'], 3 + noise_lines)
            q = {s['example'][:20]: s for s in doc['queries']['top_by_count']}
            check('invalid UTF-8 statement kept (bytes replaced)',
                  any('\ufffd' not in k and k.startswith('SELECT ?') for k in q), True)

        # 2. a single 20 MB line (more than the 8 MB read buffer) between
        # good lines, and a file that ends without a newline
        p = os.path.join(d, 'huge.log')
        with open(p, 'wb') as f:
            f.write(good[0] + stderr_line(1, b'SELECT \'' + b'y' * (20 << 20) + b'\'') + good[2])
            f.write(good[3].rstrip(b'\n'))
        doc = run(cli, p, 'stderr')
        if doc:
            check('20 MB statement and its neighbours', doc['queries']['total'], 3)
            check('20 MB statement normalized', any(s['query'] == 'select ?;'
                                                     for s in doc['queries']['top_by_count']), True)

        # 3. pure binary data in every format, and auto detection on it
        p = os.path.join(d, 'binary.bin')
        with open(p, 'wb') as f:
            f.write(rnd.randbytes(1 << 20))
        for fmt in ('stderr', 'csv', 'jsonlog', 'auto'):
            doc = run(cli, p, fmt)
            if doc:
                check('binary %s statements' % fmt, doc['queries']['total'], 0)
                check('binary %s unparsed > 0' % fmt, doc['input']['unparsed_lines'] > 1000, True)

        # 4. csv: an unterminated quote must not swallow the records after it
        p = os.path.join(d, 'bad.csv')
        rec = (b'2026-11-22 07:51:21.569 UTC,"u","db",7976,"[local]",6b.1f28,73,"SELECT",'
               b'2026-11-22 07:51:20 UTC,3/51,756,LOG,00000,"duration: 2.000 ms  statement: '
               b'select 1",,,,,,,,,"app","client backend",,0\n')
        with open(p, 'wb') as f:
            f.write(rec * 3 + b'"unterminated, quote\n' + b'\xff\x00,,,\n' + rec * 2)
        doc = run(cli, p, 'csv')
        if doc:
            check('csv statements around garbage', doc['queries']['total'], 5)
            check('csv unparsed', doc['input']['unparsed_lines'], 2)

        # 5. jsonlog: broken objects between good ones
        p = os.path.join(d, 'bad.json')
        obj = (b'{"timestamp":"2026-11-22 07:51:21.569 UTC","pid":1,"error_severity":"LOG",'
               b'"message":"duration: 3.000 ms  statement: select 2","dbname":"d"}\n')
        with open(p, 'wb') as f:
            f.write(obj + b'{"timestamp": \n' + b'[1,2]\n' + b'{"message":"\xff"}\n' + obj)
        doc = run(cli, p, 'jsonlog')
        if doc:
            check('jsonlog statements around garbage', doc['queries']['total'], 2)
            check('jsonlog unparsed', doc['input']['unparsed_lines'], 3)

        # 6. invalid params are refused with a message naming the param
        out = subprocess.run([cli, '{"files":["x"],"format":"xml"}'], capture_output=True)
        check('bad format refused', (out.returncode, b'format "xml" is not one of' in out.stderr),
              (1, True))
        out = subprocess.run([cli, '{"files":["x"],"prefix":"%m %Z "}'], capture_output=True)
        check('bad prefix refused', (out.returncode, b"unknown escape '%Z'" in out.stderr),
              (1, True))
        out = subprocess.run([cli, json.dumps({'files': [os.path.join(d, 'none*.log')]})],
                             capture_output=True)
        check('no matching file', (out.returncode, b'no file matches' in out.stderr), (1, True))
    finally:
        shutil.rmtree(d)
    if failures:
        print('%d failures:' % len(failures))
        for f in failures:
            print('  ' + f)
        return 1
    print('robustness: garbage counted as unparsed, good lines analysed, no crash')
    return 0


if __name__ == '__main__':
    sys.exit(main())
