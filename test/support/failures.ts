import { WorkflowFailedError } from '@temporalio/client';

/** The workflow's own failure (its type and message) from a run that must fail; fails the test if it succeeded. */
export async function failureOf(p: Promise<unknown>): Promise<{ type?: string; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as { type?: string; message: string };
  return { type: cause.type, message: cause.message };
}
