#!/usr/bin/env python3
"""Check la_cli's figures on a sample log against pgBadger 12's summary.

  check_summary.py LA_CLI DATA_DIR VARIANT      (VARIANT: stderr, csv, jsonlog)

Decompresses the sample log of DATA_DIR (small.stderr.log.xz, small.csv.xz or
small.json.xz) into a temporary directory, runs la_cli on it with the options
pgBadger was given, and compares every figure of VARIANT.summary.json that
issue 6 names. Where we knowingly differ from pgBadger (see
plugins/log_analysis/README.md, "Differences with pgBadger") the expected
value is ours, with the reason next to it. Exit status 0 when all match;
otherwise every mismatch is printed and the status is 1.
"""
import json
import lzma
import os
import subprocess
import sys
import tempfile

LOG = {'stderr': 'small.stderr.log', 'csv': 'small.csv', 'jsonlog': 'small.json'}
PARAMS = {
    'stderr': {'format': 'stderr', 'prefix': '%m [%p] %q%u@%d/%a '},
    'csv': {'format': 'csv'},
    'jsonlog': {'format': 'jsonlog'},
}

failures = []


def check(what, ours, theirs, rel=None):
    if rel is not None and isinstance(ours, (int, float)) and isinstance(theirs, (int, float)):
        ok = abs(ours - theirs) <= rel * max(abs(theirs), 1e-9)
    else:
        ok = ours == theirs
    if not ok:
        failures.append('%s: ours %r, pgBadger %r' % (what, ours, theirs))


def main():
    la_cli, data, variant = sys.argv[1], sys.argv[2], sys.argv[3]
    summary = json.load(open(os.path.join(data, variant + '.summary.json')))
    tmp = tempfile.mkdtemp(prefix='la_check_')
    log = os.path.join(tmp, LOG[variant])
    with lzma.open(os.path.join(data, LOG[variant] + '.xz')) as src, open(log, 'wb') as dst:
        dst.write(src.read())
    params = dict(PARAMS[variant], files=[log], top=20)
    out = subprocess.run([la_cli, json.dumps(params)], capture_output=True, check=True)
    d = json.loads(out.stdout)
    os.unlink(log)
    os.rmdir(tmp)

    check('schema_version', d['schema_version'], 1)
    # pgBadger's log_lines: physical lines for stderr, records for csv/jsonlog
    lines = d['input']['lines'] if variant == 'stderr' else d['input']['entries']
    check('log_lines', lines, summary['log_lines'])
    check('unparsed_lines', d['input']['unparsed_lines'], 0)
    check('first_ts', d['input']['first_ts'], summary['first_log_ts'])
    check('last_ts', d['input']['last_ts'], summary['last_log_ts'])

    q, sq = d['queries'], summary['queries']
    check('queries.total', q['total'], sq['total'])
    check('queries.total_duration_ms', q['total_duration_ms'], sq['total_duration_ms'], 0.001)
    check('bind duration', q['bind']['duration_ms'], sq['bind_duration_ms'], 0.001)
    check('parse duration', q['parse']['duration_ms'], sq['parse_duration_ms'], 0.001)
    for t, n in sq['by_type'].items():
        check('queries.by_type.' + t, q['by_type'].get(t, {}).get('count', 0), n)
    # statements of no listed type are "others" in both tools; pgBadger's
    # summary leaves them out
    others = q['by_type'].get('others', {}).get('count', 0)
    check('queries.by_type.others', others, sq['total'] - sum(sq['by_type'].values()))
    check('distinct_normalized', q['distinct_normalized'], sq['distinct_normalized'])
    ours = {(s['query'], s['count'], round(s['total_ms'], 3)) for s in q['top_by_total_duration'][:10]}
    theirs = {(s['query'], s['count'], round(s['total_ms'], 3)) for s in sq['top10_by_total_duration']}
    check('top10_by_total_duration', sorted(ours ^ theirs), [])
    by_q = {s['query']: s for s in q['top_by_count']}
    for s in sq['top10_by_count']:
        mine = by_q.get(s['query'])
        check('top_by_count %r' % s['query'], mine and (mine['count'], mine['min_ms'], mine['max_ms']),
              (s['count'], s['min_ms'], s['max_ms']))
    # we print the statement as logged; pgBadger appends a ';'
    for a, b in zip(q['slowest_individual'], sq['slowest_individual']):
        check('slowest_individual', (a['duration_ms'], a['query'].rstrip(';'), a['database'], a['user']),
              (b['duration_ms'], b['query'].rstrip(';'), b['db'], b['user']))
    for key, ours_key in (('queries_by_database', 'by_database'), ('queries_by_user', 'by_user'),
                          ('queries_by_application', 'by_application')):
        for name, v in summary[key].items():
            mine = q[ours_key].get(name, {})
            check('%s.%s.count' % (key, name), mine.get('count'), v['count'])
            check('%s.%s.duration_ms' % (key, name), mine.get('duration_ms'), v['duration_ms'], 0.001)

    e, se = d['errors'], summary['errors']
    for lv in ('ERROR', 'WARNING', 'FATAL'):
        check('errors.by_level.' + lv, e['by_level'][lv], se['by_level'].get(lv, 0))
    # pgBadger also counts 6 LOG lines as errors (README difference 1): the 5
    # "still waiting" lock messages are our locks.still_waiting_messages.
    check('LOG "errors" = still waiting + "database system was shut down"',
          d['locks']['still_waiting_messages'] + 1, se['by_level']['LOG'])
    classes = {(c['level'], c['message_class']): c for c in e['classes']}
    for c in se['classes']:
        mine = classes.get((c['level'], c['message_class']))
        check('errors.classes %s %r' % (c['level'], c['message_class']), mine and mine['count'],
              c['count'])
        if c['sqlstate'] is not None and mine:
            check('errors.classes sqlstate %r' % c['message_class'], mine['sqlstate'], c['sqlstate'])
    # the statement behind each error: a STATEMENT line (stderr) or column
    for (lv, cls), n in ((('ERROR', 'division by zero'), 40), (('ERROR', 'deadlock detected'), 3),
                         (('ERROR', 'syntax error at or near "..."'), 20)):
        got = classes.get((lv, cls), {}).get('statements', [])
        check('statements behind %r' % cls, sum(x['count'] for x in got), n)
    check('statement behind the lock timeout',
          classes[('ERROR', 'canceling statement due to lock timeout')]['statements'],
          [{'query': 'update accounts set balance = ? where id = ?;', 'count': 1}])
    if variant == 'stderr':
        for lv, n in se['logs_type'].items():
            if lv not in ('ERROR', 'LOG'):  # pgBadger: 209 and 9,995 (see README)
                check('lines_by_level.' + lv, e['lines_by_level'].get(lv), n)
    if variant == 'jsonlog':
        check('errors.by_sqlstate', e['by_sqlstate'], se['by_sqlstate'])
    elif variant == 'csv':
        # pgBadger ignores csvlog's sql_state_code (README difference 2);
        # ours must equal what pgBadger reads from jsonlog.
        js = json.load(open(os.path.join(data, 'jsonlog.summary.json')))
        check('errors.by_sqlstate (csv)', e['by_sqlstate'], js['errors']['by_sqlstate'])
    else:
        check('errors.by_sqlstate (stderr without %e)', e['by_sqlstate'], {})
    check('cancellations.statement_timeout', e['cancellations']['statement_timeout'], 3)
    check('cancellations.user_request', e['cancellations']['user_request'], 1)

    lk, slk = d['locks'], summary['locks']
    check('locks.acquired_after_wait_by_type', lk['acquired_after_wait_by_type'],
          slk['acquired_after_wait_by_type'])
    check('locks.acquired_after_wait_total', lk['acquired_after_wait_total'],
          slk['acquired_after_wait_total'])
    check('locks.still_waiting_messages', lk['still_waiting_messages'], slk['still_waiting_messages'])
    check('locks.deadlocks', lk['deadlocks'], slk['deadlocks'])

    ck, sck = d['checkpoints'], summary['checkpoints']
    for k, v in sck.items():
        if k == 'too_frequent_warnings':
            # pgBadger misses "(1 second apart)" (README difference 4): 3 lines
            check('checkpoints.too_frequent_warnings', ck[k], v + 1)
        else:
            check('checkpoints.' + k, ck[k], v, 0.0001 if isinstance(v, float) else None)

    t = d['temp_files']
    for k, v in summary['temp_files'].items():
        check('temp_files.' + k, t[k], v)
    check('temp_files.by_statement count', sum(s['count'] for s in t['by_statement']),
          summary['temp_files']['count'])

    for k, v in summary['autovacuum'].items():
        check('autovacuum.' + k, d['autovacuum'][k], v)
    for k, v in summary['connections'].items():
        check('connections.' + k, d['connections'][k], v)
    s, ss = d['sessions'], summary['sessions']
    check('sessions.total', s['total'], ss['total'])
    check('sessions.total_duration_ms', s['total_duration_ms'], ss['total_duration_ms'], 0.001)
    for k in ('by_database', 'by_user', 'by_app', 'by_host'):
        mine = s['by_application' if k == 'by_app' else k]
        for name, v in ss[k].items():
            check('sessions.%s.%s.count' % (k, name), mine.get(name, {}).get('count'), v['count'])
            check('sessions.%s.%s.duration_ms' % (k, name), mine.get(name, {}).get('duration_ms'),
                  v['duration_ms'], 0.001)
    hourly = sum(h['queries'] for h in d['hourly'])
    check('hourly queries add up', hourly, q['total'])

    if failures:
        print('%d mismatches with pgBadger on %s:' % (len(failures), variant))
        for f in failures:
            print('  ' + f)
        return 1
    print('%s: all figures match pgBadger (or differ only as documented)' % variant)
    return 0


if __name__ == '__main__':
    sys.exit(main())
