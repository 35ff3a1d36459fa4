import { claimInputProblems } from '../../workflows/claim';
import { backupInputProblems } from '../../workflows/backup-input';
import type { BackupClusterInput } from '../../workflows/backup-cluster';
import { recoveryInputProblems, type RecoverClusterInput } from '../../workflows/recovery-input';
import { alertNoticeProblems, responseInputProblems, type RespondToAlertInput } from '../../workflows/response-input';
import { drillInputProblems } from '../../workflows/drill-input';
import { checkInputProblems, healthInputProblems } from '../../workflows/health-input';
import { importInputProblems, type ImportBackupInput } from '../../workflows/import-input';
import { approvalDecisionProblems } from '../../workflows/approval-input';
import { captureInputProblems } from '../../workflows/capture-input';
import { payloadConverter } from '../../src/temporal/payload-converter';
import * as workflows from '../../workflows';

/**
 * Every workflow's input arrives from places the CLI does not guard (the Temporal UI's start form, webhooks,
 * scripts): each hostile or malformed value is refused with the field named, before any activity runs.
 */
const HOSTILE = ['prod; rm -rf /', '$(reboot)', '`id`', '../../etc', "it's", 'a\nb', 'a b', '', 'x'.repeat(200_000), 'PROD', '-prod'];
const WRONG_TYPES: unknown[] = [null, 42, true, ['prod'], { name: 'prod' }];

describe('workflow inputs refuse hostile and malformed values, naming the field', () => {
  it('recovery: every string field, wrong types, numbers out of range, unknown fields', () => {
    const base: RecoverClusterInput = { cluster: 'prod' };
    expect(recoveryInputProblems(base)).toEqual([]);
    for (const bad of [...HOSTILE, ...WRONG_TYPES]) {
      expect(recoveryInputProblems({ ...base, cluster: bad as string }).join()).toMatch(/^cluster: /);
    }
    for (const bad of [...HOSTILE.filter((h) => h !== 'PROD' && h !== '-prod'), ...WRONG_TYPES, 'a/../b', '/abs']) {
      expect([bad, recoveryInputProblems({ ...base, snapshot: bad as string }).join()]).toEqual([
        bad,
        expect.stringMatching(/^snapshot: /),
      ]);
    }
    for (const bad of ['cp1; id', '$(id)', 'a b', 'x'.repeat(300), '-oProxyCommand=id'])
      expect(recoveryInputProblems({ ...base, target: bad }).join()).toMatch(/^target: /);
    expect(recoveryInputProblems({ ...base, targetHostKey: 'ssh-ed25519 AAAA; id' }).join()).toMatch(/^targetHostKey: /);
    expect(recoveryInputProblems({ ...base, mode: 'sideways' as never }).join()).toMatch(/^mode: /);
    expect(recoveryInputProblems({ ...base, approval: 'yes' as never }).join()).toMatch(/^approval: /);
    expect(recoveryInputProblems({ ...base, dryRun: 'false' as never }).join()).toMatch(/^dryRun: /);
    expect(recoveryInputProblems({ ...base, keepRestoredOnFailure: 1 as never }).join()).toMatch(/^keepRestoredOnFailure: /);
    expect(recoveryInputProblems({ ...base, reason: 'r'.repeat(501) }).join()).toMatch(/^reason: at most 500/);
    expect(recoveryInputProblems({ ...base, approvalTimeoutSeconds: 0 }).join()).toMatch(/^approvalTimeoutSeconds: /);
    expect(recoveryInputProblems({ ...base, approvalTimeoutSeconds: 1e12 }).join()).toMatch(/^approvalTimeoutSeconds: /);
    expect(recoveryInputProblems({ ...base, controlPlaneTimeoutSeconds: 1.5 }).join()).toMatch(/^controlPlaneTimeoutSeconds: /);
    expect(recoveryInputProblems({ ...base, skipVerify: true } as never).join()).toMatch(/^input: unknown field "skipVerify"/);
    // A 200 KB snapshot key is refused on its length, and not echoed back.
    const huge = recoveryInputProblems({ ...base, snapshot: 'k'.repeat(200_000) });
    expect(huge).toEqual(['snapshot: too large (200002 characters of JSON; the whole input must be at most 16384)']);
    for (const bad of WRONG_TYPES) expect(recoveryInputProblems(bad as never).length).toBeGreaterThan(0);
  });

  it('backup: cluster, reason, retentionDryRun, unknown fields, wrong types', () => {
    expect(backupInputProblems({ cluster: 'prod', reason: 'schedule' })).toEqual([]);
    for (const bad of [...HOSTILE, ...WRONG_TYPES])
      expect(backupInputProblems({ cluster: bad } as BackupClusterInput).join()).toMatch(/^cluster: /);
    expect(backupInputProblems({ cluster: 'prod', reason: 'r'.repeat(501) }).join()).toMatch(/^reason: /);
    expect(backupInputProblems({ cluster: 'prod', retentionDryRun: 'yes' } as never).join()).toMatch(/^retentionDryRun: /);
    expect(backupInputProblems({ cluster: 'prod', allowRevisionRegression: true })).toEqual([]);
    for (const bad of ['true', 1, null, {}])
      expect(backupInputProblems({ cluster: 'prod', allowRevisionRegression: bad } as never).join()).toMatch(/^allowRevisionRegression: /);
    expect(backupInputProblems({ cluster: 'prod', bucket: 'other' } as never).join()).toMatch(/^input: unknown field "bucket"/);
    for (const bad of [null, 42, true, ['prod'], 'prod'])
      expect(backupInputProblems(bad as never)).toEqual(['input: expected an object like {"cluster": "prod"}']);
  });

  it('alert response: cluster, alert name, status, fingerprint, labels (names, count, lengths), unknown fields', () => {
    const alert = { name: 'KubeAPIDown', status: 'firing' as const, fingerprint: 'abc123' };
    const base: RespondToAlertInput = { cluster: 'prod', alert };
    expect(responseInputProblems(base)).toEqual([]);
    for (const bad of [...HOSTILE, ...WRONG_TYPES])
      expect(responseInputProblems({ ...base, cluster: bad as string }).join()).toMatch(/^cluster: /);
    for (const bad of ['Kube APIDown', '$(id)', 'x'.repeat(201), ''])
      expect(responseInputProblems({ ...base, alert: { ...alert, name: bad } }).join()).toMatch(/^alert\.name: /);
    expect(responseInputProblems({ ...base, alert: { ...alert, status: 'burning' as never } }).join()).toMatch(/^alert\.status: /);
    expect(responseInputProblems({ ...base, alert: { ...alert, fingerprint: '../x' } }).join()).toMatch(/^alert\.fingerprint: /);
    expect(responseInputProblems({ ...base, alert: { ...alert, labels: { 'a b': 'x' } } }).join()).toMatch(
      /^alert\.labels: "a b" is not a label name/,
    );
    expect(responseInputProblems({ ...base, alert: { ...alert, labels: { job: 'x'.repeat(501) } } }).join()).toMatch(
      /^alert\.labels\.job: /,
    );
    const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`l${i}`, 'v']));
    expect(responseInputProblems({ ...base, alert: { ...alert, labels: many } }).join()).toMatch(/at most 40 labels/);
    expect(responseInputProblems({ ...base, alert: { ...alert, summary: 's'.repeat(1001) } }).join()).toMatch(/^alert\.summary: /);
    expect(responseInputProblems({ ...base, alert: { ...alert, startsAt: 'yesterday' } }).join()).toMatch(/^alert\.startsAt: /);
    expect(responseInputProblems({ ...base, policy: 'auto' } as never).join()).toMatch(/^input: unknown field "policy"/);
    expect(responseInputProblems({ cluster: 'prod' } as never).join()).toMatch(/^alert: expected an object/);
  });

  /** Shell metacharacters, "..", quotes, newline, NUL, 200 KB, and strings that are fine text but no key. */
  const HOSTILE_KEYS = [
    'x; rm -rf /',
    '$(reboot)',
    '`id`',
    '../../etc/passwd',
    'a/../b',
    "it's",
    'say "hi"',
    'a\nb',
    'a\u0000b',
    'a b',
    '',
    'k'.repeat(200_000),
  ];

  it('drill: cluster, snapshot, reason, unknown fields, wrong types', () => {
    expect(drillInputProblems({ cluster: 'prod', snapshot: 'latest', reason: 'schedule' })).toEqual([]);
    for (const bad of [...HOSTILE, ...WRONG_TYPES]) expect(drillInputProblems({ cluster: bad as string }).join()).toMatch(/^cluster: /);
    for (const bad of [...HOSTILE_KEYS, ...WRONG_TYPES])
      expect([bad, drillInputProblems({ cluster: 'prod', snapshot: bad as string }).join()]).toEqual([
        bad,
        expect.stringMatching(/^snapshot: /),
      ]);
    for (const bad of ['r'.repeat(501), 42, null])
      expect(drillInputProblems({ cluster: 'prod', reason: bad as string }).join()).toMatch(/^reason: /);
    expect(drillInputProblems({ cluster: 'prod', scratchDir: '/' } as never).join()).toMatch(/^input: unknown field "scratchDir"/);
    for (const bad of [null, 42, true, ['prod'], 'prod'])
      expect(drillInputProblems(bad as never)).toEqual(['input: expected an object like {"cluster": "prod"}']);
  });

  it('health check: cluster, node, timeoutSeconds, unknown fields, wrong types', () => {
    expect(healthInputProblems({ cluster: 'prod', node: 'cp1', timeoutSeconds: 10 })).toEqual([]);
    for (const bad of [...HOSTILE, ...WRONG_TYPES]) expect(healthInputProblems({ cluster: bad as string }).join()).toMatch(/^cluster: /);
    for (const bad of [...HOSTILE.filter((h) => h !== ''), 'a\u0000b', ...WRONG_TYPES])
      expect([bad, healthInputProblems({ cluster: 'prod', node: bad as string }).join()]).toEqual([bad, expect.stringMatching(/^node: /)]);
    for (const bad of [0, 61, 1.5, '10', null])
      expect(healthInputProblems({ cluster: 'prod', timeoutSeconds: bad as number }).join()).toMatch(/^timeoutSeconds: /);
    expect(healthInputProblems({ cluster: 'prod', command: 'id' } as never).join()).toMatch(/^input: unknown field "command"/);
    for (const bad of [null, 42, true, ['prod'], 'prod'])
      expect(healthInputProblems(bad as never)).toEqual(['input: expected an object like {"cluster": "prod"}']);
  });

  it('reachability check: cluster, unknown fields, wrong types', () => {
    expect(checkInputProblems({ cluster: 'prod' })).toEqual([]);
    for (const bad of [...HOSTILE, 'a\u0000b', ...WRONG_TYPES])
      expect(checkInputProblems({ cluster: bad as string }).join()).toMatch(/^cluster: /);
    expect(checkInputProblems({ cluster: 'prod', node: 'x' } as never).join()).toMatch(/^input: unknown field "node"/);
    for (const bad of [null, 42, true, ['prod'], 'prod'])
      expect(checkInputProblems(bad as never)).toEqual(['input: expected an object like {"cluster": "prod"}']);
  });

  it('import: cluster, key, from, staged, reason, unknown fields, wrong types', () => {
    const base: ImportBackupInput = { cluster: 'prod', key: 'etcd-backups/2026-11-25-09-45' };
    expect(importInputProblems(base)).toEqual([]);
    expect(importInputProblems({ ...base, from: 'snapshot-2026-11-25-09-45.db', staged: true, reason: 'migration' })).toEqual([]);
    for (const bad of [...HOSTILE, ...WRONG_TYPES])
      expect(importInputProblems({ ...base, cluster: bad as string }).join()).toMatch(/^cluster: /);
    for (const bad of [...HOSTILE_KEYS, '/abs/path', 'a//b', ...WRONG_TYPES]) {
      expect([bad, importInputProblems({ ...base, key: bad as string }).join()]).toEqual([bad, expect.stringMatching(/^key: /)]);
      if (bad !== undefined)
        expect([bad, importInputProblems({ ...base, from: bad as string }).join()]).toEqual([bad, expect.stringMatching(/^from: /)]);
    }
    // A 200 KB key is refused on its length, and not echoed back.
    expect(importInputProblems({ ...base, key: 'k'.repeat(200_000) }).join().length).toBeLessThan(200);
    expect(importInputProblems({ ...base, staged: 'yes' as never }).join()).toMatch(/^staged: /);
    expect(importInputProblems({ ...base, reason: 'r'.repeat(501) }).join()).toMatch(/^reason: /);
    expect(importInputProblems({ ...base, bucket: 'other' } as never).join()).toMatch(/^input: unknown field "bucket"/);
    expect(importInputProblems({ cluster: 'prod' } as never).join()).toMatch(/^key: /);
    for (const bad of [null, 42, true, ['prod'], 'prod'])
      expect(importInputProblems(bad as never).join()).toMatch(/^input: expected an object/);
  });

  it('continuous capture: cluster, the chain a run hands to the next, unknown fields, wrong types', () => {
    const chain = {
      id: '20261203T080000Z-rev9007199254740993',
      base: { manifestKey: 'lifeboat/prod/etcd/x.manifest.json', revision: '9007199254740993' },
    };
    expect(captureInputProblems({ cluster: 'prod' })).toEqual([]);
    expect(captureInputProblems({ cluster: 'prod', chain })).toEqual([]);
    for (const bad of [...HOSTILE, ...WRONG_TYPES]) expect(captureInputProblems({ cluster: bad as string }).join()).toMatch(/^cluster: /);
    expect(captureInputProblems({ cluster: 'prod', chain: { ...chain, id: '../x' } }).join()).toMatch(/^chain\.id: /);
    // Revisions are digits, never JS numbers (int64 past 2^53).
    expect(captureInputProblems({ cluster: 'prod', chain: { ...chain, base: { ...chain.base, revision: 42 as never } } }).join()).toMatch(
      /^chain\.base\.revision: /,
    );
    expect(captureInputProblems({ cluster: 'prod', chain: { ...chain, extra: 1 } as never }).join()).toMatch(
      /^chain: unknown field "extra"/,
    );
    expect(captureInputProblems({ cluster: 'prod', chain: 'x' as never }).join()).toMatch(/^chain: expected an object/);
    expect(captureInputProblems({ cluster: 'prod', node: 'x' } as never).join()).toMatch(/^input: unknown field "node"/);
    for (const bad of [null, 42, true, ['prod'], 'prod'])
      expect(captureInputProblems(bad as never)).toEqual(['input: expected an object like {"cluster": "prod"}']);
  });

  it('every workflow the worker registers has its input checked here', () => {
    const registered = Object.entries(workflows)
      .filter(([, v]) => typeof v === 'function')
      .map(([k]) => k)
      .sort();
    // Each name maps to the checker exercised above; a new workflow must add its own before this passes.
    expect(registered).toEqual([
      'backupCluster',
      'captureClusterChanges',
      'checkCluster',
      'checkClusterHealth',
      'drillRestore',
      'holdClaim',
      'importBackup',
      'recoverCluster',
      'respondToAlert',
    ]);
  });

  it('holdClaim takes no input and runs only as the child of the run holding the claim', () => {
    expect(claimInputProblems([], 'recover-prod')).toEqual([]);
    expect(claimInputProblems([{ cluster: 'prod' }], 'recover-prod')).toEqual([expect.stringMatching(/^input: holdClaim takes none/)]);
    expect(claimInputProblems([], undefined)).toEqual([expect.stringMatching(/runs only as the child/)]);
  });

  /** Every input checker, with a valid input: what follows must be refused by each of them alike. */
  const CHECKERS: [string, (input: never) => string[], object][] = [
    ['recovery', recoveryInputProblems, { cluster: 'prod' }],
    ['backup', backupInputProblems, { cluster: 'prod' }],
    ['alert response', responseInputProblems, { cluster: 'prod', alert: { name: 'KubeAPIDown', status: 'firing', fingerprint: 'f1' } }],
    ['drill', drillInputProblems, { cluster: 'prod' }],
    ['health check', healthInputProblems, { cluster: 'prod' }],
    ['reachability check', checkInputProblems, { cluster: 'prod' }],
    ['import', importInputProblems, { cluster: 'prod', key: 'a/b' }],
    ['continuous capture', captureInputProblems, { cluster: 'prod' }],
  ];

  it.each(CHECKERS)(
    '%s: a 1 MB unknown field is refused naming it, without echoing it; bytes and non-JSON are refused',
    (_n, check, good) => {
      expect(check(good as never)).toEqual([]);
      const flood = check({ ...good, blob: 'x'.repeat(1_000_000) } as never);
      expect(flood.join()).toMatch(/^blob: too large \(1000002 characters of JSON; the whole input must be at most \d+\)$/);
      expect(check({ ...good, extra: [1] } as never).join()).toMatch(/^input: unknown field "extra" \(remove it; expected cluster[,)]/);
      // A binary/plain payload decodes to bytes: not an object of fields.
      expect(check(new Uint8Array([123, 125]) as never).join()).toMatch(/^input: expected an object like \{"cluster": "prod"/);
      // What the worker's payload converter makes of data that is not JSON: refused by name, not a TypeError later.
      const broken = payloadConverter.fromPayload({
        metadata: { encoding: new TextEncoder().encode('json/plain') },
        data: new TextEncoder().encode('{"cluster": "prod",'),
      });
      expect(check(broken as never).join()).toMatch(/^input: not valid JSON \(json\/plain: .*\); send a JSON object like \{"cluster"/);
    },
  );

  it('alert response: strict inside the alert too (input and signal), unless replaying a run from before', () => {
    const alert = { name: 'KubeAPIDown', status: 'firing' as const, fingerprint: 'abc123' };
    expect(responseInputProblems({ cluster: 'prod', alert: { ...alert, runbook: 'x' } as never })).toEqual([
      'alert: unknown field "runbook" (remove it; expected name, status, fingerprint, startsAt, labels, summary)',
    ]);
    expect(alertNoticeProblems({ ...alert, ['k'.repeat(100)]: 1 }, 'signal').join()).toMatch(
      /^signal: unknown field "k{40}\.\.\." \(remove it;/,
    );
    const flood = responseInputProblems({ cluster: 'prod', alert: { ...alert, blob: 'x'.repeat(1_000_000) } as never });
    expect(flood).toEqual(['alert: too large (1000073 characters of JSON; the whole input must be at most 132096)']);
    const nested = alertNoticeProblems({ ...alert, blob: 'x'.repeat(1_000_000) } as never);
    expect(nested).toEqual(['alert.blob: too large (1000002 characters of JSON; the whole alert must be at most 131072)']);
    // Runs recorded before strict schemas let these through: replaying them must decide as they did.
    expect(responseInputProblems({ cluster: 'prod', alert: { ...alert, runbook: 'x' } as never }, false)).toEqual([]);
  });

  it('approve/reject payloads: who is non-empty one-line text of at most 100, why at most 500, nothing else', () => {
    expect(approvalDecisionProblems({ by: 'alice' }, 'approve')).toEqual([]);
    expect(approvalDecisionProblems({ by: 'alice@example.com', reason: 'etcd wiped' }, 'reject')).toEqual([]);
    const cases: [unknown, RegExp][] = [
      [null, /^signal approve: expected an object like \{"by": "alice"/],
      [undefined, /^signal approve: expected an object/],
      ['alice', /^signal approve: expected an object/],
      [['alice'], /^signal approve: expected an object/],
      [{}, /^signal approve\.by: expected non-empty text of at most 100 characters: who decides/],
      [{ by: 42 }, /^signal approve\.by: expected non-empty text/],
      [{ by: '   ' }, /^signal approve\.by: expected non-empty text/],
      [{ by: 'x'.repeat(101) }, /^signal approve\.by: expected non-empty text of at most 100 characters \(got 101\)/],
      [{ by: 'alice\nmallory' }, /^signal approve\.by: expected one line without control characters/],
      [{ by: 'alice', reason: 'r'.repeat(501) }, /^signal approve\.reason: expected text of at most 500 characters \(got 501\)$/],
      [
        { by: 'alice', reason: 'r'.repeat(100_000) },
        /^signal approve\.reason: too large \(100002 characters of JSON; the whole signal approve must be at most 4096\)$/,
      ],
      [{ by: 'alice', reason: 42 }, /^signal approve\.reason: /],
      [{ by: 'alice', note: 'x' }, /^signal approve: unknown field "note" \(remove it; expected by, reason\)/],
      [
        { by: 'alice', blob: 'x'.repeat(1_000_000) },
        /^signal approve\.blob: too large \(1000002 characters of JSON; the whole signal approve must be at most 4096\)$/,
      ],
      [
        payloadConverter.fromPayload({
          metadata: { encoding: new TextEncoder().encode('json/plain') },
          data: new TextEncoder().encode('{by'),
        }),
        /^signal approve: not valid JSON/,
      ],
      [
        payloadConverter.fromPayload({ metadata: { encoding: new TextEncoder().encode('json/protobuf') }, data: new Uint8Array([1]) }),
        /^signal approve: not valid JSON \(json\/protobuf: Unknown encoding/,
      ],
    ];
    for (const [bad, problem] of cases) {
      const problems = approvalDecisionProblems(bad, 'approve');
      expect([problem.source, problems.join('; ')]).toEqual([problem.source, expect.stringMatching(problem)]);
      expect(problems.join('; ').length).toBeLessThan(400);
    }
  });

  it("the worker's payload converter decodes what the SDK's does, and turns what it cannot into a marker, cut", () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(payloadConverter.fromPayload({ metadata: { encoding: enc('json/plain') }, data: enc('{"cluster":"prod"}') })).toEqual({
      cluster: 'prod',
    });
    expect(payloadConverter.fromPayload({ metadata: { encoding: enc('binary/null') } })).toBeUndefined();
    const flood = payloadConverter.fromPayload({ metadata: { encoding: enc('json/plain') }, data: enc(`{${'x'.repeat(1_000_000)}`) });
    expect(JSON.stringify(flood).length).toBeLessThan(300);
    expect(payloadConverter.fromPayload({ metadata: {} })).toEqual({
      __lifeboatUndecodablePayload: expect.stringMatching(/^no encoding: /),
    });
  });
});
