#!/usr/bin/env python3
"""The plugin through the host gives the same document as la_cli.

  test_plugin_exec.py PGREVIEWER LA_CLI DATA_DIR

Runs `pgreviewer plugin exec log_analysis --params ...` (the plugin loaded
by the host, params validated against log_analysis.yaml) and la_cli with
the same params on the sample stderr log, and compares the two documents
(all but the elapsed time). Also checks that invalid params are refused by
the manifest's schema and that a missing file fails with its name.
"""
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile


def main():
    pgr, cli, data = sys.argv[1:4]
    d = tempfile.mkdtemp(prefix='la_exec_')
    failures = []
    try:
        log = os.path.join(d, 'postgresql.log')
        with lzma.open(os.path.join(data, 'small.stderr.log.xz')) as s, open(log, 'wb') as o:
            o.write(s.read())
        params = json.dumps({'files': [log], 'format': 'stderr', 'prefix': '%m [%p] %q%u@%d/%a '})
        a = subprocess.run([pgr, 'plugin', 'exec', 'log_analysis', '--params', params],
                           capture_output=True)
        b = subprocess.run([cli, params], capture_output=True)
        if a.returncode != 0 or b.returncode != 0:
            failures.append('exit codes %d/%d: %s %s' % (a.returncode, b.returncode,
                                                        a.stderr[-500:], b.stderr[-500:]))
        else:
            da, db = json.loads(a.stdout), json.loads(b.stdout)
            for x in (da, db):
                x['input'].pop('seconds')
            if da != db:
                failures.append('plugin exec and la_cli documents differ')
            if da['queries']['total'] != 8857:
                failures.append('plugin exec: %d statements, want 8857' % da['queries']['total'])
        bad = subprocess.run([pgr, 'plugin', 'exec', 'log_analysis', '--params',
                              json.dumps({'files': [log], 'top': 0})], capture_output=True)
        if bad.returncode == 0 or b'top' not in bad.stderr + bad.stdout:
            failures.append('top 0 accepted or not named: %r' % (bad.stderr + bad.stdout)[-300:])
        missing = os.path.join(d, 'nope.log')
        bad = subprocess.run([pgr, 'plugin', 'exec', 'log_analysis', '--params',
                              json.dumps({'files': [missing]})], capture_output=True)
        if bad.returncode == 0 or missing.encode() not in bad.stderr + bad.stdout:
            failures.append('missing file not reported: %r' % (bad.stderr + bad.stdout)[-300:])
    finally:
        shutil.rmtree(d)
    for f in failures:
        print(f)
    if not failures:
        print('plugin exec: same document as la_cli')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
