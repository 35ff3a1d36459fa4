import { Command } from 'commander';
import { WorkflowIdConflictPolicy, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { findCluster, loadConfig } from '../config/load';
import { recoveryInputProblems, type RecoverClusterInput } from '../../workflows/recovery-input';
import { approvalDecisionProblems } from '../../workflows/approval-input';
import { configFileOf } from './config';
import { openClient } from './temporal-client';
import { siteTaskQueue } from '../temporal/connection';
import { runMetadata } from '../temporal/run-metadata';
import { cliUser } from './user';
import { printReport, printSteps, writeTimeline } from './recovery-report';
import { progressQuery, recoverCluster } from '../../workflows';
import type { RecoveryProgress } from '../../workflows/recover-cluster';

export { recoveryWorkflowId } from '../../workflows/run-ids';
import { recoveryWorkflowId } from '../../workflows/run-ids';

export function restoreCommand(): Command {
  return new Command('restore')
    .description("restore a cluster's control plane from a backup (workflow recover-<cluster>; a running one is joined, not duplicated)")
    .argument('<cluster>')
    .option('--snapshot <key>', 'a backup key from `backup list`, or "latest" (the default)')
    .option(
      '--at <point>',
      'continuous backups: restore to a point instead: "newest", an etcd revision, or an RFC 3339 time (2026-12-03T09:15:00Z)',
    )
    .option('--stop-at-break', 'with --at newest: restore the newest point a broken chain still proves instead of refusing')
    .option('--target <node>', 'node name from the config, or a host (then --target-host-key)')
    .option('--target-host-key <key>', 'pinned SSH host key of a target that is not in the config')
    .option('--mode <mode>', 'in-place | new-node', 'in-place')
    .option('--approve', 'approve up front (approval: auto)')
    .option('--dry-run', 'plan and preflight only; change nothing')
    .option('--override-cooldown', 'restore even though a recovery restored this cluster within recovery.cooldown')
    .option(
      '--accept-unsigned-manifest',
      "restore a backup whose manifest is not signed (taken before manifests were signed): you trust the bucket's numbers",
    )
    .option('--reason <text>', 'why (kept in the result)')
    .option('--timeline <file.svg>', "write the recovery's step timeline (an SVG picture of its steps' times) to this file")
    .option('--no-wait', 'start and return')
    .action(
      async (
        cluster: string,
        opts: {
          snapshot?: string;
          at?: string;
          stopAtBreak?: boolean;
          target?: string;
          targetHostKey?: string;
          mode: string;
          approve?: boolean;
          dryRun?: boolean;
          overrideCooldown?: boolean;
          acceptUnsignedManifest?: boolean;
          reason?: string;
          timeline?: string;
          wait: boolean;
        },
        cmd: Command,
      ) => {
        const config = await loadConfig(configFileOf(cmd));
        const { site } = findCluster(config, cluster);
        const input: RecoverClusterInput = {
          cluster,
          ...(opts.snapshot !== undefined ? { snapshot: opts.snapshot } : {}),
          ...(opts.at !== undefined ? { at: opts.at } : {}),
          ...(opts.stopAtBreak ? { stopAtBreak: true } : {}),
          target: opts.target,
          targetHostKey: opts.targetHostKey,
          mode: opts.mode as RecoverClusterInput['mode'],
          // Without --approve the workflow applies the cluster's recovery.approval and approvalTimeout itself.
          approval: opts.approve ? 'auto' : undefined,
          dryRun: opts.dryRun ?? false,
          ...(opts.overrideCooldown ? { overrideCooldown: true } : {}),
          ...(opts.acceptUnsignedManifest ? { acceptUnsignedManifest: true } : {}),
          reason: opts.reason,
        };
        const problems = recoveryInputProblems(input);
        if (opts.timeline !== undefined && !opts.wait)
          problems.push("--timeline: the timeline is drawn from the run's result; drop --no-wait");
        if (problems.length) throw new Error(`invalid input:\n  ${problems.join('\n  ')}`);
        const { client, taskQueue, close } = await openClient(config);
        try {
          const handle = await client.workflow.start(recoverCluster, {
            taskQueue: siteTaskQueue(taskQueue, site),
            workflowId: recoveryWorkflowId(cluster),
            workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
            // As given, not normalized: normalizing would fill in approval "required" and override the cluster's
            // recovery.approval; the workflow fills in the defaults itself.
            args: [input],
            ...runMetadata({
              what: `${input.dryRun ? 'dry-run recovery' : 'recovery'} of ${cluster}`,
              cluster,
              backup: input.at ? `point ${input.at}` : (input.snapshot ?? 'latest'),
              reason: input.reason,
              startedBy: cliUser(),
            }),
          });
          console.log(`recovery ${handle.workflowId} (run ${handle.firstExecutionRunId})`);
          if (!opts.wait) return;
          let last = '';
          const show = async () => {
            const p = await handle.query(progressQuery).catch(() => undefined);
            if (!p) return;
            const line = `${p.state}: ${p.steps
              .filter((s) => s.status !== 'pending')
              .map((s) => `${s.step} ${s.status}`)
              .join(' > ')}`;
            if (line !== last) {
              console.log(`  ${(last = line)}`);
              if (p.state === 'awaiting-approval') console.log(`  waiting for approval: lifeboat recovery approve ${cluster} --by <you>`);
            }
          };
          const poll = setInterval(() => void show(), 1000);
          try {
            const result = await handle.result();
            printReport(result);
            if (opts.timeline) await writeTimeline(result, opts.timeline);
          } finally {
            clearInterval(poll);
          }
        } finally {
          await close();
        }
      },
    );
}

/**
 * The recovery's progress, from the worker (a query). A query needs a worker: when none answers, the server still
 * knows how the run ended, so that is said instead of the SDK's bare "Failed to query Workflow".
 */
async function progressOf(
  handle: WorkflowHandle,
  cluster: string,
  nothingTo: string,
): Promise<{ progress?: RecoveryProgress; ended?: string }> {
  try {
    return { progress: await handle.query(progressQuery) };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new Error(`no recovery of cluster "${cluster}" has run${nothingTo}`, { cause: err });
    const d = await handle.describe().catch(() => undefined);
    if (!d) throw err;
    if (d.status.name !== 'RUNNING')
      return { ended: `${d.status.name.toLowerCase()}${d.closeTime ? ` at ${d.closeTime.toISOString()}` : ''} (run ${d.runId})` };
    throw new Error(
      `the recovery of cluster "${cluster}" is running, but no worker answered (task queue ${d.taskQueue}): is \`lifeboat worker\` running? (${(err as Error).message})`,
      { cause: err },
    );
  }
}

export function recoveryCommand(): Command {
  const recovery = new Command('recovery').description('follow and decide running recoveries');
  recovery
    .command('status <cluster>')
    .description("steps of the cluster's current or last recovery")
    .action(async (cluster: string, _o: unknown, cmd: Command) => {
      const config = await loadConfig(configFileOf(cmd));
      const { client, close } = await openClient(config);
      try {
        const handle = client.workflow.getHandle(recoveryWorkflowId(cluster));
        const { progress: p, ended } = await progressOf(handle, cluster, '');
        if (!p) {
          // Ended, and no worker to ask for its steps: the server's word (`lifeboat worker` running shows them too).
          console.log(`${handle.workflowId}: ${ended}`);
          return;
        }
        console.log(`${handle.workflowId}: ${p.state}`);
        printSteps(p.steps);
        if (p.plan) console.log(`plan: ${p.plan.steps.map((s, i) => `\n  ${i + 1}. ${s}`).join('')}`);
      } finally {
        await close();
      }
    });
  for (const decision of ['approve', 'reject'] as const) {
    recovery
      .command(`${decision} <cluster>`)
      .description(`${decision} the cluster's recovery that waits for approval`)
      .requiredOption('--by <name>', 'who decides (recorded)')
      .option('--reason <text>', 'why (recorded)')
      .action(async (cluster: string, opts: { by: string; reason?: string }, cmd: Command) => {
        // The workflow ignores a malformed decision (the server cannot refuse a signal): refuse it here, by flag.
        const payload = { by: opts.by, ...(opts.reason !== undefined ? { reason: opts.reason } : {}) };
        const problems = approvalDecisionProblems(payload, decision).map((p) => p.replace(/^signal \w+\.(by|reason):/, '--$1:'));
        if (problems.length) throw new Error(`invalid input:\n  ${problems.join('\n  ')}`);
        const config = await loadConfig(configFileOf(cmd));
        const { client, close } = await openClient(config);
        try {
          const handle = client.workflow.getHandle(recoveryWorkflowId(cluster));
          // A signal to a run that is not waiting is accepted and ignored: say so instead of printing "approved".
          const { progress: p, ended } = await progressOf(handle, cluster, `; nothing to ${decision}`);
          if (!p) throw new Error(`the last recovery of cluster "${cluster}" has ended (${ended}); nothing to ${decision}`);
          if (p.state !== 'awaiting-approval')
            throw new Error(
              `the recovery of cluster "${cluster}" is not waiting for approval (it is ${p.state}); nothing to ${decision} (see \`lifeboat recovery status ${cluster}\`)`,
            );
          await handle.signal(decision, payload);
          console.log(`${decision === 'approve' ? 'approved' : 'rejected'} recovery of ${cluster}`);
        } finally {
          await close();
        }
      });
  }
  return recovery;
}
