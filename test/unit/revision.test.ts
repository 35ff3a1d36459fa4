import { kubernetesVersionOf, parseSnapshotStatus } from '../../activities/backup/inspect-snapshot';
import { parseManifest } from '../../src/backup/manifest';
import { addRevisions, compareRevisions, maxRevision, revisionFromJson, toRevision } from '../../src/etcd/revision';
import { parseEtcdEndpointStatus } from '../../src/health/parse-node-output';
import { MAX_REVISION_BUMP, REVISION_BUMP, restoredRevisionOf, revisionBumpFor } from '../../src/recovery/plan';

/** 2^53 + 1: the first integer a JS number cannot hold (it reads back as 2^53). */
const PAST_2_53 = '9007199254740993';

describe('etcd revisions are int64, carried as digits', () => {
  it('reads digits and exact numbers; refuses what is not a revision, naming the field', () => {
    expect(toRevision(PAST_2_53)).toBe(PAST_2_53);
    expect(toRevision(42)).toBe('42');
    expect(() => toRevision(2 ** 53 + 2, 'plan.revisionBump')).toThrow(
      /plan\.revisionBump: 9007199254740994 is not an etcd revision.*past 2\^53/,
    );
    for (const bad of ['-1', '01', '1e9', '9223372036854775808', '', null, 1.5])
      expect(() => toRevision(bad)).toThrow(/not an etcd revision/);
  });

  it('compares and adds as integers, not as text or floats', () => {
    expect(compareRevisions('10', '9')).toBe(1);
    expect(compareRevisions(PAST_2_53, '9007199254740992')).toBe(1);
    expect(maxRevision('9', undefined, '10', 3)).toBe('10');
    expect(addRevisions(PAST_2_53, REVISION_BUMP)).toBe('9007200254740993');
    expect(() => addRevisions('9223372036854775807', 1)).toThrow(/past etcd's int64 range/);
  });

  it("reads etcdctl's JSON without rounding: snapshot status, endpoint status", () => {
    expect(revisionFromJson(`{"hash":1,"revision":${PAST_2_53},"totalKey":3}`)).toBe(PAST_2_53);
    expect(parseSnapshotStatus(`{"hash":1,"revision":${PAST_2_53},"totalKey":3,"totalSize":4096}`).revision).toBe(PAST_2_53);
    const status = `[{"Endpoint":"x","Status":{"header":{"cluster_id":1,"member_id":2,"revision":${PAST_2_53},"raft_term":2},"version":"3.6.16","dbSize":1}}]`;
    expect(parseEtcdEndpointStatus(status)?.revision).toBe(PAST_2_53);
  });

  it('a manifest keeps a revision past 2^53 written as digits and refuses one written as a rounded number', () => {
    const manifest = (revision: string) =>
      `{"format":"lifeboat-backup/v1","cluster":"c","created":"2026-12-03T00:00:00.000Z","etcd":{"hash":1,"revision":${revision},"totalKeys":1,"totalSize":1},"resourceCounts":{},"snapshot":{"key":"k","plainSize":1,"plainSha256":"${'a'.repeat(64)}","storedSize":1,"storedSha256":"${'b'.repeat(64)}","encryption":null},"controlPlaneFiles":null,"verified":true,"workflow":{"workflowId":"w","runId":"r"},"engineVersion":"t"}`;
    expect(parseManifest('k', manifest(`"${PAST_2_53}"`)).etcd.revision).toBe(PAST_2_53);
    expect(parseManifest('k', manifest('42')).etcd.revision).toBe('42');
    expect(() => parseManifest('k', manifest(PAST_2_53))).toThrow(/etcd\.revision: expected an etcd revision/);
  });

  it('the restore bump goes past the highest known revision, within a ceiling', () => {
    expect(revisionBumpFor('100', '100')).toBe(String(REVISION_BUMP));
    expect(revisionBumpFor('100', '5000')).toBe(String(REVISION_BUMP + 4900));
    expect(revisionBumpFor('5000', '100')).toBe(String(REVISION_BUMP));
    expect(() => revisionBumpFor('100', (MAX_REVISION_BUMP + 100n).toString())).toThrow(/more than any real cluster reaches/);
    expect(restoredRevisionOf({ snapshot: { revision: PAST_2_53 }, tool: { bumpRevision: true }, revisionBump: '1000000000' })).toBe(
      '9007200254740993',
    );
    // a plan recorded before revisions were strings
    expect(restoredRevisionOf({ snapshot: { revision: 42 }, tool: { bumpRevision: true } })).toBe(String(42 + REVISION_BUMP));
  });
});

describe('kubernetesVersionOf', () => {
  it("reads the tag of a kube-apiserver manifest's image, and nothing from what is not one", () => {
    const manifest =
      'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n    image: registry.k8s.io/kube-apiserver:v1.34.4\n';
    expect(kubernetesVersionOf(manifest)).toBe('v1.34.4');
    expect(kubernetesVersionOf('spec: {}')).toBeUndefined();
    expect(kubernetesVersionOf(': not yaml: [')).toBeUndefined();
  });
});
