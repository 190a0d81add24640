#!/usr/bin/env python3
"""Parallel reading of one large file gives exactly the figures of a single
thread, in each format: chunk boundaries must fall between entries
(multi-line statements, csv records with quoted newlines).

  test_threads.py LA_CLI DATA_DIR

Builds a file of about 40 MB per format from copies of the sample log
(timestamps unchanged: only the counts matter), runs la_cli with threads 1
and 2, and compares the documents (all but timing, chunk counts and cache hits).
"""
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile

FORMATS = {'stderr': ('small.stderr.log', 26), 'csv': ('small.csv', 15), 'jsonlog': ('small.json', 9)}


def run(cli, path, fmt, threads):
    params = {'files': [path], 'format': fmt, 'prefix': '%m [%p] %q%u@%d/%a ', 'threads': threads}
    out = subprocess.run([cli, json.dumps(params)], capture_output=True, check=True)
    return json.loads(out.stdout)


def main():
    cli, data = sys.argv[1], sys.argv[2]
    d = tempfile.mkdtemp(prefix='la_threads_')
    failures = []
    try:
        for fmt, (name, copies) in FORMATS.items():
            with lzma.open(os.path.join(data, name + '.xz')) as f:
                one = f.read()
            path = os.path.join(d, name)
            with open(path, 'wb') as f:
                f.write(one * copies)
            a, b = run(cli, path, fmt, 1), run(cli, path, fmt, 2)
            chunks = b['input']['files'][0]['chunks']
            for doc in (a, b):
                doc['input'].pop('seconds')
                doc['input']['files'][0].pop('chunks')
                doc['queries'].pop('shape_cache_hits')  # one cache per thread
            if chunks != 2:
                failures.append('%s: %d chunks with 2 threads, want 2' % (fmt, chunks))
            if a != b:
                failures.append('%s: 1 and 2 threads disagree' % fmt)
            if a['queries']['total'] != 8857 * copies or a['input']['unparsed_lines'] != 0:
                failures.append('%s: %d statements, %d unparsed; want %d, 0' % (
                    fmt, a['queries']['total'], a['input']['unparsed_lines'], 8857 * copies))
            os.unlink(path)
    finally:
        shutil.rmtree(d)
    for f in failures:
        print(f)
    if not failures:
        print('threads: 2 chunks give the same document as 1 thread in every format')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
