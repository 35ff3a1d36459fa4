import { writeFile } from 'node:fs/promises';
import type { RecoveryStepStatus } from '../recovery/plan';
import { stepTimelineSvg } from '../recovery/step-timeline';
import type { RecoverClusterResult } from '../../workflows/recover-cluster';

const seconds = (s: RecoveryStepStatus) =>
  s.startedAt && s.endedAt ? `${((Date.parse(s.endedAt) - Date.parse(s.startedAt)) / 1000).toFixed(1)}s` : '';

export function printSteps(steps: RecoveryStepStatus[]): void {
  for (const s of steps) console.log(`  ${s.status.padEnd(11)} ${s.step.padEnd(20)} ${seconds(s).padStart(7)}  ${s.detail ?? ''}`);
}

export function printReport(r: RecoverClusterResult): void {
  console.log(`\nrecovery of ${r.cluster}: ${r.outcome}`);
  if (r.point) {
    const p = r.point;
    console.log(`  point:    revision ${p.revision}, seen ${p.time} (asked: ${p.asked})`);
    console.log(`  from:     base ${p.base.manifestKey} (revision ${p.base.revision}) + ${p.segments} segments of chain ${p.chain}`);
    console.log(`  newest:   the chain proves up to revision ${p.newest.revision} (${p.newest.time})`);
    if (p.brokenAt) console.log(`  broken:   at ${p.brokenAt.key}: ${p.brokenAt.problem}`);
    console.log(`  left out: ${p.notRestored}`);
    if (p.built?.replay)
      console.log(
        `  rebuilt:  ${p.built.replay.revisions} revisions (${p.built.replay.events} events) replayed; ${p.built.replay.leased.keys} leased keys under leases of ${p.built.replay.leased.ttlSeconds}s`,
      );
  }
  console.log(`  backup:   ${r.plan.snapshot.key} (taken ${r.plan.snapshot.created}, revision ${r.plan.snapshot.revision})`);
  for (const s of r.plan.skipped) console.log(`  skipped:  ${s.manifestKey}: ${s.reason}`);
  console.log(`  node:     ${r.plan.node} (${r.plan.host}), ${r.plan.mode}`);
  printSteps(r.steps);
  if (r.outcome === 'planned') console.log(`  plan:${r.plan.steps.map((s, i) => `\n    ${i + 1}. ${s}`).join('')}`);
  if (r.previousDataDir)
    console.log(`  the replaced etcd data dir is kept at ${r.previousDataDir}; the original manifests were moved to ${r.manifestsMovedTo}`);
  if (r.verification) {
    console.log(`  API ${r.verification.apiServer}: ${r.verification.namespaces.length} namespaces, ${r.verification.nodes.length} nodes`);
    console.log(`  matched the backup: ${r.verification.matched.map((m) => `${m.resource}=${m.actual}`).join(', ')}`);
    if (r.verification.differed.length)
      console.log(`  differ (volatile): ${r.verification.differed.map((d) => `${d.resource} ${d.expected}->${d.actual}`).join(', ')}`);
  }
  console.log(
    `  RPO ${r.rpoSeconds}s (age of the restored data)${r.downtimeSeconds !== undefined ? `, control plane down ${r.downtimeSeconds}s` : ''}`,
  );
}

/** The report's picture: the steps' timeline as an SVG file (`restore --timeline FILE`). */
export async function writeTimeline(r: RecoverClusterResult, file: string): Promise<void> {
  await writeFile(file, stepTimelineSvg(r.steps, `Recovery of ${r.cluster}: ${r.outcome}`));
  console.log(`  timeline: ${file}`);
}
