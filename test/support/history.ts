import type { temporal } from '@temporalio/proto';

/**
 * Everything a workflow's history holds as text: payloads are base64/bytes inside the proto, so they are decoded
 * here before searching, otherwise a leaked secret would hide inside an encoded payload.
 */
export function historyText(history: temporal.api.history.v1.IHistory): string {
  const parts: string[] = [];
  const walk = (v: unknown): void => {
    if (v instanceof Uint8Array) {
      parts.push(Buffer.from(v).toString('utf8'), Buffer.from(v).toString('base64'));
    } else if (Array.isArray(v)) {
      v.forEach(walk);
    } else if (v && typeof v === 'object') {
      for (const value of Object.values(v)) walk(value);
    } else if (typeof v === 'string') {
      parts.push(v);
    }
  };
  walk(history);
  return parts.join('\n');
}
