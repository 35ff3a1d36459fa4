import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * The custom search attributes every lifeboat workflow sets on itself, so operators can filter runs in the Temporal UI
 * and with `temporal workflow list --query "LifeboatCluster='prod' AND LifeboatRun='recovery'"`. Pure: imported by the
 * workflows (deterministic) as well as by the dev server launcher and `lifeboat temporal setup`, which register them.
 */
export const CLUSTER = defineSearchAttributeKey('LifeboatCluster', SearchAttributeType.KEYWORD);
/** What kind of run: one of RunKind. */
export const RUN = defineSearchAttributeKey('LifeboatRun', SearchAttributeType.KEYWORD);
/** How the run ended (succeeded, failed, restored, planned, rejected, invalid-input, ...); absent while it runs. */
export const OUTCOME = defineSearchAttributeKey('LifeboatOutcome', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTE_KEYS = [CLUSTER, RUN, OUTCOME];

/** `drill` is reserved for restore drills (issue 11). */
export type RunKind = 'backup' | 'recovery' | 'response' | 'health' | 'check' | 'drill' | 'capture';

/** As `temporal server start-dev --search-attribute` takes them. */
export const DEV_SERVER_SEARCH_ATTRIBUTES = SEARCH_ATTRIBUTE_KEYS.map((k) => `${k.name}=Keyword`);

/** The same list by name and type, for `lifeboat temporal check`. */
export const LIFEBOAT_SEARCH_ATTRIBUTES = {
  LifeboatCluster: 'Keyword',
  LifeboatRun: 'Keyword',
  LifeboatOutcome: 'Keyword',
} as const;

export type SearchAttributeTypeName = (typeof LIFEBOAT_SEARCH_ATTRIBUTES)[keyof typeof LIFEBOAT_SEARCH_ATTRIBUTES];
