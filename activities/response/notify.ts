import { ApplicationFailure } from '@temporalio/common';
import { resolveSecret } from '../../src/secrets';
import type { ActivityDeps } from '../deps';

export type ResponseEvent =
  | 'needs-approval'
  | 'recovery-started'
  | 'stood-down'
  | 'no-restore'
  | 'notified'
  | 'planned'
  | 'recovered'
  | 'recovery-failed'
  | 'rejected';

export interface NotifyInput {
  cluster: string;
  event: ResponseEvent;
  /** One human line; never secrets (workflows only know names). */
  text: string;
  workflowId: string;
}

/**
 * Posts a Slack-compatible message ({"text": ...} plus a structured copy) to `alerts.notify.url`, when configured.
 * The URL is a secret (Slack's carries its token): it is resolved here, never logged, never in an error.
 */
export function notify(deps: ActivityDeps) {
  return async (input: NotifyInput): Promise<{ sent: boolean }> => {
    const target = deps.config.alerts.notify;
    if (!target) return { sent: false };
    const url = (await resolveSecret(target.url, 'alerts.notify.url')).toString('utf8').trim();
    const body = JSON.stringify({ text: `lifeboat [${input.cluster}] ${input.event}: ${input.text}`, lifeboat: input });
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      // The cause may quote the URL (and a token in it): keep only its kind, and not the cause itself.
      // eslint-disable-next-line preserve-caught-error
      throw new Error(`alerts.notify.url: the notification could not be sent (${(err as Error).name})`);
    }
    if (res.status >= 400 && res.status < 500 && res.status !== 429) {
      throw ApplicationFailure.nonRetryable(
        `alerts.notify.url: the notification endpoint refused the message with HTTP ${res.status}`,
        'NotificationRefused',
      );
    }
    if (!res.ok) throw new Error(`alerts.notify.url: the notification endpoint answered HTTP ${res.status}`);
    deps.logger.info({ cluster: input.cluster, event: input.event }, 'notification sent');
    return { sent: true };
  };
}
