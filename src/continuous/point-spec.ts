import { isRevision, type Revision } from '../etcd/revision';

/**
 * What a person asks a restore to land on: the newest durable point, an etcd revision or a moment. Pure, so the
 * recovery workflow checks its input with it before any step runs.
 */
export type PointSpec = { kind: 'newest' } | { kind: 'revision'; revision: Revision } | { kind: 'time'; at: string };

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** "newest", a revision (digits) or an RFC 3339 time, or why not. Pure (the workflow checks its input with it). */
export function parsePoint(text: unknown): PointSpec | string {
  if (typeof text !== 'string' || !text)
    return 'expected "newest", an etcd revision (digits) or an RFC 3339 time like 2026-12-03T09:15:00Z';
  if (text === 'newest') return { kind: 'newest' };
  if (/^\d+$/.test(text)) {
    if (!isRevision(text) || text === '0') return `${text} is not an etcd revision (1 to 9223372036854775807)`;
    return { kind: 'revision', revision: text.replace(/^0+/, '') };
  }
  if (RFC3339.test(text) && !Number.isNaN(Date.parse(text))) return { kind: 'time', at: new Date(Date.parse(text)).toISOString() };
  return `"${text.slice(0, 60)}" is neither "newest", an etcd revision (digits) nor an RFC 3339 time like 2026-12-03T09:15:00Z`;
}
