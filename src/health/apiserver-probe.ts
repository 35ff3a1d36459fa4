import { request } from 'node:https';
import { failedChecks } from './parse-node-output';
import type { ComponentHealth } from './types';

interface Answer {
  status: number;
  body: string;
}

function get(url: URL, caPem: string, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // Anonymous (no client certificate), TLS verified against the cluster CA: what any client of the API would see.
    const req = request(url, { method: 'GET', ca: caPem, timeout: timeoutMs, headers: { accept: 'text/plain' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= 65536) chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${Math.round(timeoutMs / 100) / 10} s`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * kube-apiserver's /livez and /readyz from where the engine runs, as an anonymous client (kubeadm leaves them open
 * to anonymous requests), with TLS verified against the cluster CA. Up when both answer 200; 401/403 means the
 * server is alive but refuses anonymous checks, which counts as up with that said in the detail.
 */
export async function probeApiserver(server: string, caPem: string | undefined, timeoutMs: number): Promise<ComponentHealth> {
  const component = 'kube-apiserver' as const;
  if (!caPem)
    return {
      component,
      up: false,
      detail: `${server}: not probed: the cluster CA could not be read from the node to verify its TLS certificate`,
    };
  const [livez, readyz] = await Promise.allSettled(['/livez', '/readyz'].map((p) => get(new URL(p, server), caPem, timeoutMs)));
  const describe = (name: string, r: PromiseSettledResult<Answer>): { ok: boolean; auth?: boolean; text: string } => {
    if (r.status === 'rejected') return { ok: false, text: `${name}: ${(r.reason as Error).message}` };
    if (r.value.status === 200) return { ok: true, text: `${name} ok` };
    if (r.value.status === 401 || r.value.status === 403)
      return { ok: true, auth: true, text: `${name} HTTP ${r.value.status} (anonymous checks refused)` };
    return { ok: false, text: `${name} HTTP ${r.value.status}${r.value.body ? `: ${failedChecks(r.value.body)}` : ''}` };
  };
  const l = describe('/livez', livez);
  const r = describe('/readyz', readyz);
  return { component, up: l.ok && r.ok, detail: `${server}: ${l.text}, ${r.text}` };
}
