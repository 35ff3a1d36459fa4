import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Config } from '../src/config/schema';

/** What activities are given instead of reaching for globals: the validated config and a logger. */
export interface ActivityDeps {
  config: Config;
  logger: Logger;
  /** For activities that act on Temporal itself (pausing a backup schedule during a recovery). */
  client?: Client;
}
