#!/usr/bin/env python3
"""The engine's side of `source: server` (la_run_remote) without a server:
`la_cli --server-dir DIR` lists DIR as pg_ls_logdir() would and reads it
with pread() in place of pg_read_binary_file().

  test_server_dir.py LA_CLI DATA_DIR

Checks: read in 4 MB chunks, a log gives exactly the document the file
source gives on the same bytes (entries cut across chunks included);
incremental runs across appends, a rotation to a new name and a partial
last line add up to the whole log; a name reused with other contents is
read from 0; an unchanged directory is not read; auto picks .log, .csv and
.json by extension; a format with no file gets a clear message.
"""
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


def la(cli, params, state=None, server_dir=None, ok=True):
    argv = [cli]
    if state:
        argv += ['--state', state]
    if server_dir:
        argv += ['--server-dir', server_dir]
    out = subprocess.run(argv + [json.dumps(params)], capture_output=True)
    if ok and out.returncode != 0:
        raise SystemExit('la_cli failed: %s' % out.stderr.decode())
    if not ok:
        return out.returncode, out.stderr.decode()
    return json.loads(out.stdout)


def comparable(doc):
    """The document without what depends on how it was read."""
    doc = json.loads(json.dumps(doc))
    for k in ('seconds', 'files'):
        doc['input'].pop(k)
    doc['queries'].pop('shape_cache_hits')
    return doc


def file_figures(cli, d, name, data, fmt='stderr'):
    """The figures of the file source on data (a whole file)."""
    p = os.path.join(d, name)
    with open(p, 'wb') as f:
        f.write(data)
    doc = la(cli, {'files': [p], 'format': fmt, 'prefix': PREFIX, 'threads': 1})
    os.unlink(p)
    return doc


def server(fmt='stderr', **kw):
    return dict({'source': 'server', 'format': fmt, 'prefix': PREFIX}, **kw)


def test_chunks(cli, d, log):
    """Three copies of the sample (4.9 MB): two chunks, entries cut across them."""
    big = log * 3
    want = comparable(file_figures(cli, d, 'whole.log', big))
    sd = os.path.join(d, 'chunks')
    os.mkdir(sd)
    with open(os.path.join(sd, 'postgresql-1.log'), 'wb') as f:
        f.write(big)
    got = la(cli, server(), server_dir=sd)
    check('chunks: same document as the file source', comparable(got), want)
    check('chunks: end offset', got['input']['files'][0]['end_offset'], len(big))


def parts_of(log):
    lines = log.splitlines(keepends=True)
    cuts = [0]
    for frac in (0.3, 0.6, 0.8, 0.9):
        i = int(len(lines) * frac)
        while lines[i].startswith(b'\t'):
            i += 1
        cuts.append(i)
    cuts.append(len(lines))
    return [b''.join(lines[a:b]) for a, b in zip(cuts, cuts[1:])]


def test_incremental(cli, d, log):
    parts = parts_of(log)
    counts = [file_figures(cli, d, 'p.log', p)['queries']['total'] for p in parts]
    total = file_figures(cli, d, 'all.log', log)['queries']['total']
    check('parts add up', sum(counts), total)
    sd = os.path.join(d, 'incr')
    os.mkdir(sd)
    st = os.path.join(d, 'incr.state')
    f1, f2 = os.path.join(sd, 'postgresql-1.log'), os.path.join(sd, 'postgresql-2.log')
    runs = []

    def run():
        doc = la(cli, server(), state=st, server_dir=sd)
        runs.append(doc['queries']['total'])
        return doc

    with open(f1, 'wb') as f:
        f.write(parts[0])
    run()
    with open(f1, 'ab') as f:
        f.write(parts[1])
    run()
    # rotation: the server opens a new name; the old one is complete
    with open(f2, 'wb') as f:
        f.write(parts[2])
    doc = run()
    check('rotation: old file resumes at its end', doc['input']['files'][0]['start_offset'],
          len(parts[0]) + len(parts[1]))
    # a write in progress: the last line without its newline waits
    first, rest = parts[4].split(b'\n', 1)
    with open(f2, 'ab') as f:
        f.write(parts[3] + first)
    doc = run()
    check('partial line left', doc['input']['files'][1]['end_offset'],
          len(parts[2]) + len(parts[3]))
    with open(f2, 'ab') as f:
        f.write(b'\n' + rest)
    run()
    check('runs per step', runs, [counts[0], counts[1], counts[2], counts[3], counts[4]])
    check('runs add up to the whole log', sum(runs), total)
    doc = run()
    check('unchanged: nothing read', runs[-1], 0)
    check('unchanged: skipped', [f['skipped_unchanged'] for f in doc['input']['files']],
          [True, True])
    # a reused name (postgresql-%a.log, log_truncate_on_rotation): other
    # contents, longer than the offset reached before: read from 0
    new = parts[1] + parts[2] + parts[3]
    assert len(new) > len(parts[0]) + len(parts[1])
    with open(f1, 'wb') as f:
        f.write(new)
    doc = run()
    check('reused name read from 0', doc['input']['files'][0]['start_offset'], 0)
    check('reused name counted', runs[-1], counts[1] + counts[2] + counts[3])
    # truncated below the offset: from 0
    with open(f2, 'wb') as f:
        f.write(parts[0])
    run()
    check('truncated file read from 0', runs[-1], counts[0])
    # a file removed from the directory leaves the state
    os.unlink(f1)
    run()
    with open(st) as f:
        names = [e['name'] for e in json.load(f)['server_files']]
    check('state after removal', names, ['postgresql-2.log'])


def test_formats(cli, d, log, csv, jsn):
    sd = os.path.join(d, 'fmts')
    os.mkdir(sd)
    for name, data in (('pg.log', log), ('pg.csv', csv), ('pg.json', jsn)):
        with open(os.path.join(sd, name), 'wb') as f:
            f.write(data)
    with open(os.path.join(sd, 'pg.log.old'), 'wb') as f:
        f.write(b'not picked\n')
    for fmt, data in (('csv', csv), ('jsonlog', jsn)):
        want = comparable(file_figures(cli, d, 'x', data, fmt))
        got = la(cli, server(fmt), server_dir=sd)
        check('%s: same document as the file source' % fmt, comparable(got), want)
        check('%s: one file' % fmt, [f['path'] for f in got['input']['files']],
              [os.path.join(sd, 'pg.' + ('csv' if fmt == 'csv' else 'json'))])
    got = la(cli, server('auto'), server_dir=sd)
    check('auto: by extension', [(os.path.basename(f['path']), f['format'])
                                 for f in got['input']['files']],
          [('pg.csv', 'csv'), ('pg.json', 'jsonlog'), ('pg.log', 'stderr')])
    empty = os.path.join(d, 'empty')
    os.mkdir(empty)
    with open(os.path.join(empty, 'pg.log'), 'wb') as f:
        f.write(log[:1000])
    rc, err = la(cli, server('csv'), server_dir=empty, ok=False)
    check('no csv file: status', rc, 1)
    check('no csv file: message', err.strip(),
          "la_cli: source server: no .csv file among the 1 files of the server's log "
          "directory (log_destination must include csvlog)")
    rc, err = la(cli, server('stderr'), ok=False)
    check('server source without a connection', err.strip(),
          "la_cli: params: source server reads the log through the task's connection "
          "(run the log_analysis plugin with a connection)")


def main():
    cli, data = sys.argv[1], sys.argv[2]

    def xz(name):
        with lzma.open(os.path.join(data, name)) as f:
            return f.read()

    log = xz('small.stderr.log.xz')
    d = tempfile.mkdtemp(prefix='la_srvdir_')
    try:
        test_chunks(cli, d, log)
        test_incremental(cli, d, log)
        test_formats(cli, d, log, xz('small.csv.xz'), xz('small.json.xz'))
    finally:
        shutil.rmtree(d)
    if failures:
        print('\n'.join(failures))
        sys.exit(1)
    print('ok')


if __name__ == '__main__':
    main()
