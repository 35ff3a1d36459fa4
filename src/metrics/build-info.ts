import { Gauge } from 'prom-client';
import { engineVersion } from '../version';
import { registry } from './registry';

/**
 * `lifeboat_build_info{version} 1`, exported by every process that serves metrics from the moment it starts, before
 * any health check has run: the series the engine-absent rule watches (deploy/prometheus), so that an engine which is
 * not scraped at all — its target gone from service discovery, not merely failing — still raises an alert.
 */
export const buildInfo = new Gauge({
  name: 'lifeboat_build_info',
  help: 'Always 1 while the engine serves metrics; `version` is its package version.',
  labelNames: ['version'],
  registers: [registry],
});
buildInfo.set({ version: engineVersion() }, 1);
