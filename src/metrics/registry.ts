import { Registry } from 'prom-client';

/**
 * The engine's own metrics (prom-client), served with the Temporal runtime's at LIFEBOAT_METRICS_ADDRESS. Every
 * module that counts something registers its metrics here (`registers: [registry]`), never on prom-client's global.
 */
export const registry = new Registry();
