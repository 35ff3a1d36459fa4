import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { parseConfig } from '../../src/config/load';
import { connectClient, connectNative } from '../../src/temporal/connect';
import { temporalTarget } from '../../src/temporal/connection';
import { checkCluster } from '../../workflows';
import { testBed } from '../support/bed';
import { makePki, startTlsProxy, type TestPki, type TlsProxy } from '../support/tls-proxy';
import { startTestWorker, type RunningWorker } from '../support/worker';

const cli = join(__dirname, '../../dist/src/cli/main.js');
const run = promisify(execFile);

/** Runs the built CLI with only the given TEMPORAL_* variables (none leak in from the machine). */
async function lifeboat(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TEMPORAL_') && k !== 'LIFEBOAT_CONFIG'));
  try {
    const { stdout, stderr } = await run('node', [cli, ...args], { env: { ...clean, ...env }, timeout: 60_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const noEnv = {};

describe('Temporal through a TLS and an mTLS gRPC proxy (nginx grpc_pass in front of the dev server)', () => {
  let dir: string;
  let pki: TestPki;
  let proxy: TlsProxy;
  const workers: RunningWorker[] = [];

  const config = (temporal: Record<string, unknown>) => parseConfig({ temporal }, 'test');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'temporal-tls-'));
    pki = await makePki(join(dir, 'pki'));
    proxy = await startTlsProxy(join(dir, 'nginx'), pki, testBed().temporalAddress);
  });
  afterAll(async () => {
    for (const w of workers) await w.stop();
    await proxy?.stop();
  });

  async function workerThrough(temporal: Record<string, unknown>): Promise<RunningWorker> {
    const target = await temporalTarget(config(temporal), noEnv);
    const w = await startTestWorker([], { temporal }, { target });
    workers.push(w);
    return w;
  }

  /** A workflow whose activity fails on an unknown cluster: a workflow task and an activity task both went through. */
  async function roundTrip(w: RunningWorker): Promise<void> {
    const err = await w.client.workflow
      .execute(checkCluster, { taskQueue: w.taskQueue, workflowId: `tls-check-${Date.now()}`, args: [{ cluster: 'nope' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(((err as WorkflowFailedError).cause?.cause as { type?: string }).type).toBe('InvalidConfig');
  }

  it('a worker and its client run workflows over TLS with a private CA', async () => {
    const w = await workerThrough({ address: proxy.tlsAddress, tls: { caFile: pki.caFile } });
    await roundTrip(w);
  });

  it('a worker runs workflows over mTLS with a client certificate from secret references', async () => {
    const w = await workerThrough({
      address: proxy.mtlsAddress,
      tls: { caFile: pki.caFile, serverName: 'localhost', clientCert: { file: pki.clientCert }, clientKey: { file: pki.clientKey } },
    });
    await roundTrip(w);
  });

  it('a worker runs workflows with an API key from a secret reference (TLS on by the key alone); a wrong key names temporal.apiKey', async () => {
    const keyFile = join(dir, 'api.key');
    await writeFile(keyFile, 'test-api-key-0123456789\n');
    // No tls section: the key turns TLS on; the CA comes from the environment, as on a machine that trusts it.
    const target = await temporalTarget(config({ address: proxy.apiKeyAddress, apiKey: { file: keyFile } }), {
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caFile,
    });
    expect(target.tls).toBeDefined();
    const w = await startTestWorker([], {}, { target });
    workers.push(w);
    await roundTrip(w);
    const wrong = { ...target, apiKey: 'not-the-key' };
    for (const err of [
      await connectClient(config({}), { target: wrong }).catch((e: unknown) => e),
      await connectNative(wrong).catch((e: unknown) => e),
    ])
      expect((err as Error).message).toMatch(/the server refused the API key from temporal\.apiKey/);
  });

  /** The client's and the worker's (Rust) connection must both fail, each naming the setting. */
  async function bothFail(temporal: Record<string, unknown>): Promise<string[]> {
    const cfg = config(temporal);
    const target = await temporalTarget(cfg, noEnv);
    const client = (await connectClient(cfg, { target, connectTimeoutMs: 5_000 }).catch((e: unknown) => e)) as Error;
    const native = (await connectNative(target).catch((e: unknown) => e)) as Error;
    expect(client).toBeInstanceOf(Error);
    expect(native).toBeInstanceOf(Error);
    return [client.message, native.message];
  }

  it('a wrong CA fails naming temporal.tls.caFile, on the client and the worker connection', async () => {
    for (const message of await bothFail({ address: proxy.tlsAddress, tls: { caFile: pki.otherCaFile } }))
      expect(message).toMatch(/server's certificate is not signed by the CA in temporal\.tls\.caFile.*set temporal\.tls\.caFile/);
  });

  it('a wrong server name, or TLS against a plain-text server, fails naming the setting', async () => {
    for (const message of await bothFail({ address: proxy.tlsAddress, tls: { caFile: pki.caFile, serverName: 'wrong.example' } }))
      expect(message).toMatch(/certificate does not carry the name wrong\.example.*set temporal\.tls\.serverName/);
    for (const message of await bothFail({ address: testBed().temporalAddress, tls: true }))
      expect(message).toMatch(/TLS is on \(temporal\.tls\) but the server answers in plain text/);
  });

  it('a missing client certificate fails naming temporal.tls.clientCert', async () => {
    for (const message of await bothFail({ address: proxy.mtlsAddress, tls: { caFile: pki.caFile } }))
      expect(message).toMatch(/requires a client certificate \(mTLS.*set temporal\.tls\.clientCert and temporal\.tls\.clientKey/);
  });

  it('a client certificate from a CA the server does not trust is refused, naming temporal.tls.clientCert', async () => {
    const tls = {
      caFile: pki.caFile,
      clientCert: { file: pki.strangerCert },
      clientKey: { file: pki.strangerCert.replace('.crt', '.key') },
    };
    for (const message of await bothFail({ address: proxy.mtlsAddress, tls }))
      expect(message).toMatch(/server refused the client certificate in temporal\.tls\.clientCert/);
  });

  it('an expired client certificate is refused before dialling, naming temporal.tls.clientCert and the date', async () => {
    const cfg = config({
      address: proxy.mtlsAddress,
      tls: { caFile: pki.caFile, clientCert: { file: pki.expiredCert }, clientKey: { file: pki.clientKey } },
    });
    await expect(temporalTarget(cfg, noEnv)).rejects.toThrow(
      /^temporal\.tls\.clientCert: the client certificate \(CN=expired\) expired on Jan {2}2 00:00:00 2020 GMT: renew it$/,
    );
  });

  it('`lifeboat temporal check` connects over mTLS from TEMPORAL_* variables, which win over the config file', async () => {
    // The file points at the plain server; the environment at the mTLS proxy, as a deployment's variables would.
    const file = join(dir, 'env-wins.yaml');
    await writeFile(file, `temporal:\n  address: ${testBed().temporalAddress}\n  namespace: nope\n`);
    const { code, out } = await lifeboat(['--config', file, 'temporal', 'check'], {
      TEMPORAL_ADDRESS: proxy.mtlsAddress,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caFile,
      TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
    });
    expect(out).toContain(
      `connected: ${proxy.mtlsAddress}, namespace default, TLS (CA from TEMPORAL_TLS_SERVER_CA_CERT_PATH), client certificate from TEMPORAL_TLS_CLIENT_CERT_PATH`,
    );
    expect(out).toMatch(/namespace: default \(registered/);
    expect(out).toMatch(/search attributes: [0-3]\/3 present/);
    // Exit 1 exactly when something is missing (the shared dev server may or may not have them registered).
    expect(code === 1).toBe(/missing Lifeboat/.test(out));
  });

  it("`lifeboat temporal check` connects with Temporal's TOML profile named by TEMPORAL_PROFILE, and sends TEMPORAL_GRPC_META_* headers", async () => {
    const toml = join(dir, 'temporal.toml');
    await writeFile(
      toml,
      [
        '[profile.prod]',
        `address = "${proxy.mtlsAddress}"`,
        'namespace = "default"',
        '[profile.prod.tls]',
        `server_ca_cert_path = "${pki.caFile}"`,
        `client_cert_path = "${pki.clientCert}"`,
        `client_key_path = "${pki.clientKey}"`,
      ].join('\n'),
    );
    const file = join(dir, 'profile.yaml');
    await writeFile(file, `temporal:\n  address: ${testBed().temporalAddress}\n  namespace: nope\n`);
    const env = { TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'prod' };
    const ok = await lifeboat(['--config', file, 'temporal', 'check'], { ...env, TEMPORAL_GRPC_META_X_LIFEBOAT_PROBE: 'pass' });
    expect(ok.out).toContain(
      `connected: ${proxy.mtlsAddress}, namespace default, TLS (CA from ${toml} profile prod: tls.server_ca_cert_path), client certificate from ${toml} profile prod: tls.client_cert_path, gRPC headers x-lifeboat-probe`,
    );
    // The proxy refuses calls carrying this header's value: the header really goes out with every call.
    const refused = await lifeboat(['--config', file, 'temporal', 'check'], { ...env, TEMPORAL_GRPC_META_X_LIFEBOAT_PROBE: 'refuse' });
    expect(refused.code).toBe(1);
    expect(refused.out).not.toMatch(/^connected:/m);
  });

  it('`lifeboat temporal check` without the client certificate fails with the fix, and exit 1', async () => {
    const file = join(dir, 'no-cert.yaml');
    await writeFile(file, `temporal:\n  address: ${proxy.mtlsAddress}\n  tls:\n    caFile: ${pki.caFile}\n`);
    const { code, out } = await lifeboat(['--config', file, 'temporal', 'check']);
    expect(code).toBe(1);
    expect(out).toMatch(/requires a client certificate.*temporal\.tls\.clientCert/);
  });

  it('schedules synced and triggered by the CLI over TLS start runs that a TLS worker takes', async () => {
    const temporal = { address: proxy.tlsAddress, tls: { caFile: pki.caFile, serverName: 'localhost' } };
    const w = await workerThrough(temporal);
    const cluster = 'tls-sched';
    const file = join(dir, 'sched.yaml');
    await writeFile(
      file,
      [
        'temporal:',
        `  address: ${proxy.tlsAddress}`,
        `  taskQueue: ${w.taskQueue}`,
        '  tls:',
        `    caFile: ${pki.caFile}`,
        '    serverName: localhost',
        'clusters:',
        `  - name: ${cluster}`,
        '    nodes: [{ name: cp1, host: 127.0.0.1, hostKey: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }]',
        '    storage: { bucket: tls-sched }',
        '    backup: { allowUnencrypted: true }',
        '',
      ].join('\n'),
    );
    try {
      const sync = await lifeboat(['--config', file, 'schedule', 'sync']);
      expect(sync).toMatchObject({ code: 0 });
      expect(sync.out).toContain(`backup-${cluster}`);
      const trigger = await lifeboat(['--config', file, 'schedule', 'trigger', cluster]);
      expect(trigger.code).toBe(0);
      const handle = w.client.schedule.getHandle(`backup-${cluster}`);
      let runId: string | undefined;
      let workflowId: string | undefined;
      for (let i = 0; i < 100 && !runId; i++) {
        const action = (await handle.describe()).info.recentActions[0]?.action;
        [workflowId, runId] = [action?.workflow.workflowId, action?.workflow.firstExecutionRunId];
        if (!runId) await new Promise((r) => setTimeout(r, 200));
      }
      expect(runId).toBeDefined();
      // The worker behind the proxy took the run's first workflow task.
      const run = w.client.workflow.getHandle(workflowId!, runId);
      let taken = false;
      for (let i = 0; i < 100 && !taken; i++) {
        const history = await run.fetchHistory();
        taken = (history.events ?? []).some((e) => e.workflowTaskCompletedEventAttributes);
        if (!taken) await new Promise((r) => setTimeout(r, 200));
      }
      expect(taken).toBe(true);
      await run.terminate('test done').catch(() => undefined);
    } finally {
      for (const id of [`backup-${cluster}`, `health-${cluster}`])
        await w.client.schedule
          .getHandle(id)
          .delete()
          .catch(() => undefined);
    }
  });
});
