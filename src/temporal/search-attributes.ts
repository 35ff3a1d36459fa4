import { temporal } from '@temporalio/proto';

/**
 * The custom search attributes lifeboat's workflows set, and their types: the one list that `lifeboat temporal
 * setup` registers, `lifeboat temporal check` looks for, and the dev server of `npm start` is started with.
 */
export const LIFEBOAT_SEARCH_ATTRIBUTES = {
  LifeboatCluster: 'Keyword',
  LifeboatRun: 'Keyword',
  LifeboatOutcome: 'Keyword',
} as const;

export type SearchAttributeTypeName = (typeof LIFEBOAT_SEARCH_ATTRIBUTES)[keyof typeof LIFEBOAT_SEARCH_ATTRIBUTES];

export const INDEXED_VALUE_TYPE: Record<SearchAttributeTypeName, temporal.api.enums.v1.IndexedValueType> = {
  Keyword: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
};
