import type { Logger } from 'pino';
import type { Config } from '../src/config/schema';

/** What activities are given instead of reaching for globals: the validated config and a logger. */
export interface ActivityDeps {
  config: Config;
  logger: Logger;
}
