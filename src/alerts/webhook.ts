import { z } from 'zod';
import { formatIssues } from '../config/load';

/**
 * Alertmanager's webhook payload, version 4 (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config).
 * Only what the receiver relies on is required; Alertmanager adds fields over time, so unknown ones are allowed.
 */
const labels = z.record(z.string(), z.string());

export const webhookAlertSchema = z.looseObject({
  status: z.enum(['firing', 'resolved']),
  labels,
  annotations: labels.default({}),
  startsAt: z.string().max(64).optional(),
  endsAt: z.string().max(64).optional(),
  fingerprint: z.string().min(1).max(64),
});

export const webhookPayloadSchema = z.looseObject({
  version: z.literal('4', { error: 'expected "4" (Alertmanager webhook payload version 4)' }),
  status: z.enum(['firing', 'resolved']),
  receiver: z.string().max(1000).optional(),
  groupKey: z.string().max(10_000).optional(),
  alerts: z.array(webhookAlertSchema).max(1000),
});

export type WebhookPayload = z.infer<typeof webhookPayloadSchema>;
export type WebhookAlert = z.infer<typeof webhookAlertSchema>;

/** The payload, or the problems that make it unusable, each naming its path ("alerts[0].status: ..."). */
export function parseWebhook(body: string): { payload: WebhookPayload } | { problems: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (err) {
    return { problems: [`body: malformed JSON (${(err as Error).message})`] };
  }
  const parsed = webhookPayloadSchema.safeParse(raw);
  if (!parsed.success) return { problems: formatIssues(parsed.error.issues) };
  return { payload: parsed.data };
}
