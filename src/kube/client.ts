import { request } from 'node:https';
import type { KubeCredentials } from './kubeconfig';

export class KubeApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`${method} ${path}: HTTP ${status}: ${body.slice(0, 300)}`);
    this.name = 'KubeApiError';
  }
}

export interface KubeList<T = KubeObject> {
  items: T[];
  metadata: { resourceVersion?: string; continue?: string };
}
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
  };
  [key: string]: unknown;
}

/**
 * A small Kubernetes REST client: mutual TLS with the cluster CA pinned, JSON in and out. The engine needs only a
 * handful of calls (readyz, list, get, create, delete), and keeping them here avoids a heavy client whose current
 * releases are ESM-only and need a newer Node than many control-plane hosts run.
 */
export class KubeClient {
  constructor(
    private readonly creds: KubeCredentials,
    private readonly timeoutMs = 10_000,
  ) {}

  get server(): string {
    return this.creds.server;
  }

  async raw(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
    const url = new URL(path, this.creds.server);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          ca: this.creds.caPem,
          cert: this.creds.certPem,
          key: this.creds.keyPem,
          ...(this.creds.serverName ? { servername: this.creds.serverName } : {}),
          headers: {
            accept: 'application/json',
            ...(this.creds.token ? { authorization: `Bearer ${this.creds.token}` } : {}),
            ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
          },
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${url.href}: timed out after ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const { status, text } = await this.raw(method, path, body);
    if (status < 200 || status >= 300) throw new KubeApiError(method, path, status, text);
    return JSON.parse(text) as T;
  }

  /** True when /readyz answers 200 "ok". */
  async ready(): Promise<boolean> {
    try {
      const { status } = await this.raw('GET', '/readyz');
      return status === 200;
    } catch {
      return false;
    }
  }

  /** Lists every object at a collection path, following continue tokens. */
  async list<T = KubeObject>(collectionPath: string, pageSize = 500): Promise<T[]> {
    const items: T[] = [];
    let next: string | undefined;
    do {
      const sep = collectionPath.includes('?') ? '&' : '?';
      const page = await this.json<KubeList<T>>(
        'GET',
        `${collectionPath}${sep}limit=${pageSize}${next ? `&continue=${encodeURIComponent(next)}` : ''}`,
      );
      items.push(...page.items);
      next = page.metadata.continue || undefined;
    } while (next);
    return items;
  }

  get<T = KubeObject>(path: string): Promise<T> {
    return this.json<T>('GET', path);
  }

  create<T = KubeObject>(collectionPath: string, object: unknown): Promise<T> {
    return this.json<T>('POST', collectionPath, object);
  }

  delete(path: string): Promise<unknown> {
    return this.json('DELETE', path);
  }
}
