import { randomBytes } from 'node:crypto';
import { authenticateDocument, signDocument } from '../../src/backup/manifest-auth';
import { checkChain, type ChainEntry } from '../../src/continuous/chain';
import {
  baseDigest,
  parseSegment,
  SEGMENT_PURPOSE,
  segmentDigest,
  segmentKey,
  type Segment,
  type SegmentEvent,
} from '../../src/continuous/segment';
import { addRevisions } from '../../src/etcd/revision';

const key = randomBytes(32);
const where = { prefix: 'lifeboat', cluster: 'prod', chain: '20261203T070000Z-rev9007199254740990' };
/** Past 2^53, as etcd is after a few restores with --bump-revision. */
const base = { manifestKey: 'lifeboat/prod/etcd/20261203T070000Z-rev9007199254740990.manifest.json', revision: '9007199254740990' };
const b64 = (s: string) => Buffer.from(s).toString('base64');
const put = (rev: string, k: string): SegmentEvent => ({
  type: 'put',
  key: b64(k),
  value: b64(`v-${k}`),
  createRevision: rev,
  modRevision: rev,
  version: '1',
});

/** A chain of `n` signed segments of 3 revisions each (the middle revision a transaction of two events). */
function chain(n: number, cluster = 'prod'): ChainEntry[] {
  const out: ChainEntry[] = [];
  let previous = baseDigest(base);
  let last = base.revision;
  for (let i = 0; i < n; i++) {
    const first = addRevisions(last, 1);
    const r2 = addRevisions(first, 1);
    const r3 = addRevisions(first, 2);
    const events = [
      put(first, `a${i}`),
      put(r2, `b${i}`),
      { ...put(r2, `c${i}`), type: 'delete' as const, value: undefined },
      put(r3, `d${i}`),
    ];
    const created = new Date(Date.UTC(2026, 11, 3, 7, 0, 5 * (i + 1))).toISOString();
    const unsigned: Segment = {
      format: 'lifeboat-segment/v1',
      cluster,
      chain: where.chain,
      base,
      sequence: i,
      firstRevision: first,
      lastRevision: r3,
      count: events.length,
      previous,
      created,
      marks: [
        { revision: r2, at: new Date(Date.parse(created) - 1000).toISOString() },
        { revision: r3, at: created },
      ],
      events: events.map(({ value, ...e }) => (value === undefined ? e : { ...e, value })),
    };
    const segment = signDocument(unsigned, key, 'k1', SEGMENT_PURPOSE);
    const k = segmentKey({ ...where, cluster, firstRevision: first, lastRevision: r3, compression: 'zstd', encrypted: true });
    out.push({ key: k, segment: parseSegment(k, JSON.stringify(segment)) });
    previous = segmentDigest(segment);
    last = r3;
  }
  return out;
}

describe('segments: a chain proves every revision from its base, or says which segment breaks it and where', () => {
  it('an intact chain proves through its last revision, exactly past 2^53', () => {
    const c = chain(3);
    expect(c[0].key).toBe(`lifeboat/prod/chains/${where.chain}/0009007199254740991-0009007199254740993.seg.json.zst.enc`);
    expect(checkChain(where, base, c)).toEqual({ provenThrough: '9007199254740999', segments: 3 });
    // Key order is revision order: 19 digits, zero-padded.
    expect([...c.map((e) => e.key)].sort()).toEqual(c.map((e) => e.key));
  });

  it('a segment edited without the key fails its tag; under another purpose (a manifest tag) it does not verify', async () => {
    const [first] = chain(1);
    const loadKey = async () => key;
    expect(await authenticateDocument(JSON.stringify(first.segment), loadKey, SEGMENT_PURPOSE)).toMatchObject({ status: 'authentic' });
    const edited = { ...first.segment, events: first.segment.events.slice(0, 1) };
    expect(await authenticateDocument(JSON.stringify(edited), loadKey, SEGMENT_PURPOSE)).toMatchObject({ status: 'forged' });
    expect(await authenticateDocument(JSON.stringify(first.segment), loadKey, 'lifeboat/manifest-auth/v1')).toMatchObject({
      status: 'forged',
    });
  });

  it('a missing, reordered, moved or foreign segment stops the chain at the last one that holds, named', () => {
    const c = chain(4);
    const dropped = checkChain(where, base, [c[0], c[2], c[3]]);
    expect(dropped).toMatchObject({ provenThrough: c[0].segment.lastRevision, segments: 1, problem: { key: c[2].key } });
    expect(dropped.problem?.problem).toMatch(/segment 2 of its chain where segment 1 belongs/);
    expect(checkChain(where, base, [c[1], c[0]]).problem?.problem).toMatch(/segment 1 of its chain where segment 0 belongs/);
    const moved = { ...c[1], key: c[1].key.replace('9007199254740994-', '9007199254740995-') };
    expect(checkChain(where, base, [c[0], moved]).problem?.problem).toMatch(/moved, so not believed/);
    const foreign = chain(2, 'staging')[1];
    expect(checkChain(where, base, [c[0], foreign]).problem?.problem).toMatch(/a segment of cluster "staging", not of "prod"/);
    // A genuine segment of another chain of the same cluster (another base): its link is to that base.
    const otherBase = { ...base, manifestKey: base.manifestKey.replace('T070000Z', 'T060000Z') };
    const spliced = { ...c[0], segment: { ...c[0].segment, base: otherBase } };
    expect(checkChain(where, base, [spliced]).problem?.problem).toMatch(/not this chain's base/);
  });

  it('a segment whose events skip or reorder revisions, or whose count disagrees, is refused', () => {
    const [first] = chain(1);
    const s = first.segment;
    const gap = {
      ...first,
      segment: { ...s, events: s.events.filter((e) => e.modRevision !== addRevisions(s.firstRevision, 1)), count: 2 },
    };
    expect(checkChain(where, base, [gap]).problem?.problem).toMatch(/revisions in between are missing/);
    const reordered = { ...first, segment: { ...s, events: [...s.events].reverse() } };
    expect(checkChain(where, base, [reordered]).problem?.problem).toMatch(/its first event is at revision/);
    const miscounted = { ...first, segment: { ...s, count: 9 } };
    expect(checkChain(where, base, [miscounted]).problem?.problem).toMatch(/says 9 events and holds 4/);
  });

  it('reads strictly: an unknown field or a number for a revision is refused with its path', () => {
    const [first] = chain(1);
    const text = JSON.stringify({ ...first.segment, extra: 1 });
    expect(() => parseSegment(first.key, text)).toThrow(/segment .* is not a usable lifeboat segment: .*extra/);
    // As a bare number (what a rounding writer would produce), written as text: JS cannot hold it.
    const numeric = JSON.stringify({ ...first.segment, lastRevision: 0 }).replace('"lastRevision":0', '"lastRevision":9007199254740993');
    expect(() => parseSegment(first.key, numeric)).toThrow(/lastRevision/);
  });
});
