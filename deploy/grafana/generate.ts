import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { lifeboatDashboardJson } from './lifeboat-dashboard';

/** `npm run dashboards:gen` (run from the repository's root): writes the dashboard's JSON for import into Grafana. */
const file = resolve('deploy', 'grafana', 'lifeboat.json');
writeFileSync(file, lifeboatDashboardJson());
console.log(`wrote ${file}`);
