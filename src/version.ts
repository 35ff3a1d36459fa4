import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The package version, read at run time so the compiled CLI and ts-jest agree on it. */
export function engineVersion(): string {
  for (const up of ['..', '../..']) {
    try {
      const pkg = JSON.parse(readFileSync(join(__dirname, up, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'lifeboat' && pkg.version) return pkg.version;
    } catch {
      // try the next level: src/ under ts-node/jest, dist/src/ when compiled
    }
  }
  return 'unknown';
}
