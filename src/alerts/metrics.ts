import { Counter } from 'prom-client';
import { registry } from '../metrics/registry';

/**
 * Every alert the receiver was sent, by what became of it. No cluster label: the cluster of an ignored alert is
 * whatever the sender wrote, and an unbounded label would be a way to flood the metrics.
 */
export const alertsReceived = new Counter({
  name: 'lifeboat_alerts_received_total',
  help: 'Alerts posted to the receiver, by outcome (started-or-joined, resolved-signalled, resolved-no-response, ignored, malformed, unauthorized, temporal-unavailable)',
  labelNames: ['outcome'],
  registers: [registry],
});
