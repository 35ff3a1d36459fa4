import { hostname, userInfo } from 'node:os';

/** The person at the CLI, as "alice@bastion (lifeboat CLI)". */
export function cliUser(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): USER, if any
  }
  return `${user}@${hostname()} (lifeboat CLI)`;
}
