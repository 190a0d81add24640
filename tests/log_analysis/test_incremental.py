#!/usr/bin/env python3
"""Incremental mode of log_analysis across appends, rename rotation,
copytruncate rotation, compression of a rotated file and truncation.

  test_incremental.py LA_CLI DATA_DIR

The sample stderr log is cut at entry boundaries into parts; each scenario
writes parts into a directory the way a server and logrotate would, runs
la_cli with a state file after each step, and checks that each run counted
exactly the statements and lines that were new, so that the runs add up to
the whole log: nothing counted twice, nothing lost.
"""
import gzip
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile

PREFIX = '%m [%p] %q%u@%d/%a '
failures = []


def check(what, got, want):
    if got != want:
        failures.append('%s: got %r, want %r' % (what, got, want))


class Runner:
    def __init__(self, cli, d):
        self.cli, self.d, self.state = cli, d, os.path.join(d, 'state.json')

    def run(self, pattern='postgresql.log*', full=False):
        params = {'files': [os.path.join(self.d, pattern)], 'format': 'stderr', 'prefix': PREFIX,
                  'threads': 2, 'full': full}
        out = subprocess.run([self.cli, '--state', self.state, json.dumps(params)],
                             capture_output=True)
        if out.returncode != 0:
            raise SystemExit('la_cli failed: %s' % out.stderr.decode())
        d = json.loads(out.stdout)
        return d['queries']['total'], d['input']['lines'], d


def main():
    cli, data = sys.argv[1], sys.argv[2]
    with lzma.open(os.path.join(data, 'small.stderr.log.xz')) as f:
        lines = f.read().splitlines(keepends=True)
    # cut at entry starts (not continuation lines) near 30/60/80/90 %
    cuts = [0]
    for frac in (0.3, 0.6, 0.8, 0.9):
        i = int(len(lines) * frac)
        while lines[i].startswith(b'\t'):
            i += 1
        cuts.append(i)
    cuts.append(len(lines))
    parts = [b''.join(lines[a:b]) for a, b in zip(cuts, cuts[1:])]
    root = tempfile.mkdtemp(prefix='la_incr_')
    try:
        # what each part holds, analysed on its own
        counts = []
        for k, p in enumerate(parts):
            d = os.path.join(root, 'part%d' % k)
            os.mkdir(d)
            with open(os.path.join(d, 'postgresql.log'), 'wb') as f:
                f.write(p)
            q, n, _ = Runner(cli, d).run()
            counts.append((q, n))
        total_q = sum(c[0] for c in counts)
        check('parts add up to the whole log', total_q, 8857)

        scenario_append_rename(cli, root, parts, counts)
        scenario_copytruncate(cli, root, parts, counts)
        scenario_truncate(cli, root, parts, counts)
        scenario_csv_in_progress(cli, root)
    finally:
        shutil.rmtree(root)
    if failures:
        print('%d failures:' % len(failures))
        for f in failures:
            print('  ' + f)
        return 1
    print('incremental: all scenarios count each line exactly once')
    return 0


def scenario_append_rename(cli, root, parts, counts):
    d = os.path.join(root, 'append')
    os.mkdir(d)
    r = Runner(cli, d)
    log = os.path.join(d, 'postgresql.log')
    runs = []
    with open(log, 'wb') as f:
        f.write(parts[0])
    runs.append(r.run())
    check('append: first run', runs[-1][:2], counts[0])
    # part 1 plus the first half of the first line of part 2 (a write in
    # progress: no newline yet)
    first, rest = parts[2].split(b'\n', 1)
    half = len(first) // 2
    with open(log, 'ab') as f:
        f.write(parts[1] + first[:half])
    runs.append(r.run())
    check('append: partial last line left for later', runs[-1][:2], counts[1])
    end = runs[-1][2]['input']['files'][0]['end_offset']
    check('append: offset stops before the partial line', end,
          os.path.getsize(log) - half)
    with open(log, 'ab') as f:
        f.write(first[half:] + b'\n' + rest)
    runs.append(r.run())
    check('append: the completed line and the rest', runs[-1][:2], counts[2])
    runs.append(r.run())
    check('append: nothing new', runs[-1][:2], (0, 0))
    # rename rotation: lines written just before the rename, then a new file
    with open(log, 'ab') as f:
        f.write(parts[3])
    os.rename(log, log + '.1')
    with open(log, 'wb') as f:
        f.write(parts[4])
    runs.append(r.run())
    check('rename rotation: the tail of the old file and the new file', runs[-1][:2],
          (counts[3][0] + counts[4][0], counts[3][1] + counts[4][1]))
    check('append+rename: runs add up', sum(x[0] for x in runs), 8857)
    check('append+rename: lines add up', sum(x[1] for x in runs), 11905)
    q, n, _ = r.run(full=True)
    check('full: true re-reads everything', (q, n), (8857, 11905))


def scenario_copytruncate(cli, root, parts, counts):
    d = os.path.join(root, 'copytruncate')
    os.mkdir(d)
    r = Runner(cli, d)
    log = os.path.join(d, 'postgresql.log')
    with open(log, 'wb') as f:
        f.write(parts[0])
    runs = [r.run()]
    with open(log, 'ab') as f:
        f.write(parts[1])
    # logrotate copytruncate: copy, then truncate the original in place
    shutil.copyfile(log, log + '.1')
    with open(log, 'r+b') as f:
        f.truncate(0)
    with open(log, 'ab') as f:
        f.write(parts[2])
    runs.append(r.run())
    check('copytruncate: new lines of the copy and of the truncated file', runs[-1][:2],
          (counts[1][0] + counts[2][0], counts[1][1] + counts[2][1]))
    # the rotated copy gets compressed; the server goes on writing
    with open(log + '.1', 'rb') as src, gzip.open(log + '.1.gz', 'wb') as dst:
        dst.write(src.read())
    os.unlink(log + '.1')
    with open(log, 'ab') as f:
        f.write(parts[3])
    runs.append(r.run())
    check('compressed rotated file is not counted again', runs[-1][:2], counts[3])
    with open(log, 'ab') as f:
        f.write(parts[4])
    runs.append(r.run())
    check('copytruncate: runs add up', sum(x[0] for x in runs), 8857)
    check('copytruncate: lines add up', sum(x[1] for x in runs), 11905)
    # a fresh state reads the gzip file too
    os.unlink(r.state)
    q, n, doc = r.run()
    gz = [f for f in doc['input']['files'] if f['gzip']]
    check('gzip file read', (len(gz), gz and gz[0]['lines']), (1, counts[0][1] + counts[1][1]))
    check('fresh state reads both files', (q, n), (8857, 11905))


def scenario_truncate(cli, root, parts, counts):
    d = os.path.join(root, 'truncate')
    os.mkdir(d)
    r = Runner(cli, d)
    log = os.path.join(d, 'postgresql.log')
    with open(log, 'wb') as f:
        f.write(parts[0] + parts[1])
    r.run()
    # truncated and rewritten with less than was read: read from the start
    with open(log, 'r+b') as f:
        f.truncate(0)
        f.write(parts[3])
    check('truncated file read from the start', r.run()[:2], counts[3])
    # truncated and rewritten with more than was read: the head differs
    with open(log, 'wb') as f:
        f.write(parts[2] + parts[0])
    check('rewritten file read from the start', r.run()[:2],
          (counts[2][0] + counts[0][0], counts[2][1] + counts[0][1]))


def scenario_csv_in_progress(cli, root):
    """A csvlog record cut inside a quoted, multi-line field is a write in
    progress: left for the next run, then counted once."""
    d = os.path.join(root, 'csv')
    os.mkdir(d)
    log = os.path.join(d, 'postgresql.csv')
    rec = (b'2026-11-22 07:51:21.569 UTC,"u","db",7976,"[local]",6b.1f28,73,"SELECT",'
           b'2026-11-22 07:51:20 UTC,3/51,756,LOG,00000,"duration: 2.000 ms  statement: '
           b'select 1\nfrom t",,,,,,,,,"app","client backend",,0\n')
    cut = rec.index(b'\nfrom') + 1
    with open(log, 'wb') as f:
        f.write(rec * 2 + rec[:cut])
    state = os.path.join(d, 'state.json')
    def run():
        params = {'files': [log], 'format': 'csv'}
        out = subprocess.run([cli, '--state', state, json.dumps(params)], capture_output=True,
                             check=True)
        doc = json.loads(out.stdout)
        return doc['queries']['total'], doc['input']['unparsed_lines']
    check('csv: the record being written is left', run(), (2, 0))
    with open(log, 'ab') as f:
        f.write(rec[cut:] + rec)
    check('csv: completed record counted once', run(), (2, 0))


if __name__ == '__main__':
    sys.exit(main())
