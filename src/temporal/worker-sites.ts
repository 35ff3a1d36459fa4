import type { Config } from '../config/schema';
import { siteTaskQueue, taskQueueOf } from './connection';

export interface WorkerQueues {
  /** The task queues this worker polls: one per site it was started for, or the engine's own without --site. */
  taskQueues: string[];
  /** Clusters whose runs this worker never picks up (another site's); named at start so a forgotten --site shows. */
  elsewhere: string[];
}

/**
 * Which queues a worker polls. Started for sites (`lifeboat worker --site a --site b`), only theirs: a worker in one
 * datacenter never takes a backup or a recovery of a cluster it may not be able to reach. Without --site, the engine's
 * task queue, where the runs of clusters without a site go. A site no cluster names is refused before anything starts:
 * it is a typo, and the worker would wait forever for work.
 */
export function workerQueues(config: Config, sites: string[], env: Record<string, string | undefined> = process.env): WorkerQueues {
  const known = [...new Set(config.clusters.flatMap((c) => (c.site === undefined ? [] : [c.site])))];
  for (const site of sites) {
    if (!known.includes(site))
      throw new Error(
        `--site ${site}: no cluster of the config has site "${site}" (clusters[].site: ${known.length ? known.map((s) => `"${s}"`).join(', ') : 'none set'}); give a site a cluster names, or set it on the clusters this worker runs`,
      );
  }
  const taskQueue = taskQueueOf(config, env);
  const served = new Set<string | undefined>(sites.length ? sites : [undefined]);
  return {
    taskQueues: [...served].map((s) => siteTaskQueue(taskQueue, s)),
    elsewhere: config.clusters.filter((c) => !served.has(c.site)).map((c) => c.name),
  };
}

/**
 * Every queue the config's clusters use: the engine's own and one per site. `npm start` is one machine that reaches
 * all of them, so it serves them all; a site's runs would otherwise wait for a worker that never comes.
 */
export function everyQueue(config: Config, env: Record<string, string | undefined> = process.env): string[] {
  const taskQueue = taskQueueOf(config, env);
  const sites = [...new Set(config.clusters.flatMap((c) => (c.site === undefined ? [] : [c.site])))];
  return [taskQueue, ...sites.map((s) => siteTaskQueue(taskQueue, s))];
}
