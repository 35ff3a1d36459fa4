import type { CaptureClusterChangesInput } from './capture-changes';
import { objectProblem, unknownFields, type Shape } from './input-shape';

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const CHAIN_ID = /^\d{8}T\d{6}Z-rev\d{1,19}$/;
const SHAPE: Shape = {
  at: 'input',
  fields: ['cluster', 'chain', 'lastBreak'],
  example: '{"cluster": "prod"}',
  maxChars: 16_384,
};
const CHAIN_SHAPE: Shape = {
  at: 'chain',
  fields: ['id', 'base'],
  example: '{"id": "20261203T080000Z-rev42", "base": {"manifestKey": "...", "revision": "42"}}',
  maxChars: 4_096,
};

/**
 * The capture workflow's input, checked before anything runs. `lifeboat schedule sync` starts it with the cluster
 * only; `chain` and `lastBreak` are what a run hands to the next one (continue-as-new), checked as strictly, since
 * the UI's start form can send them too. Pure: imported by the workflow.
 */
export function captureInputProblems(input: CaptureClusterChangesInput): string[] {
  const bad = objectProblem(input, SHAPE);
  if (bad) return [bad];
  const problems: string[] = [];
  if (typeof input.cluster !== 'string' || !NAME.test(input.cluster))
    problems.push('cluster: expected a cluster name from the config (lowercase letters, digits, "-", at most 63)');
  if (input.chain !== undefined) {
    const c = input.chain as unknown as Record<string, unknown>;
    const chainBad = objectProblem(c, CHAIN_SHAPE);
    if (chainBad) problems.push(chainBad);
    else {
      const base = c.base as Record<string, unknown> | undefined;
      if (typeof c.id !== 'string' || !CHAIN_ID.test(c.id)) problems.push('chain.id: expected a chain id (<time>-rev<revision>)');
      if (!base || typeof base !== 'object' || typeof base.manifestKey !== 'string' || base.manifestKey.length > 1024)
        problems.push("chain.base.manifestKey: expected the manifest key of the chain's full backup");
      if (!base || typeof base.revision !== 'string' || !/^\d{1,19}$/.test(base.revision))
        problems.push('chain.base.revision: expected an etcd revision as digits');
      problems.push(...unknownFields(c, CHAIN_SHAPE));
    }
  }
  if (input.lastBreak !== undefined && (!input.lastBreak || typeof input.lastBreak !== 'object' || Array.isArray(input.lastBreak)))
    problems.push('lastBreak: expected what the previous run reported (leave it out)');
  problems.push(...unknownFields(input, SHAPE));
  return problems;
}
