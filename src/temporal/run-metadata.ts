/**
 * What the Temporal UI shows at the top of a run and in its list (the SDK's static summary and details, set at the
 * start): which cluster, which backup, why, and who or what started it. The workflow itself can only tell what it was
 * asked (it writes that into its memo, for runs started from the UI's form too); who asked is known here, at the start.
 * Pure (no Node modules): the alert response uses it for the recovery it starts as a child.
 */
export interface RunDescription {
  /** One line: "recovery of prod (dry run)". */
  what: string;
  cluster: string;
  backup?: string;
  reason?: string;
  startedBy: string;
}

export function runMetadata(d: RunDescription): { staticSummary: string; staticDetails: string } {
  const lines = [
    `**cluster** ${d.cluster}`,
    ...(d.backup ? [`**backup** ${d.backup}`] : []),
    ...(d.reason ? [`**reason** ${d.reason}`] : []),
    `**started by** ${d.startedBy}`,
  ];
  return { staticSummary: d.what.slice(0, 200), staticDetails: lines.join('\n\n') };
}
