import type { ConnectionLike } from '@temporalio/client';
import { typeName } from './check';
import { SEARCH_ATTRIBUTE_KEYS } from './search-attributes';

/** temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD (the proto enum; stable across server versions). */
const KEYWORD = 2;

export interface SearchAttributeSetup {
  added: string[];
  present: string[];
  /** Present under our name with another type: the workflows would fail to set them. Fix by hand. */
  wrongType: { name: string; type: string }[];
}

/** The engine's search attributes the namespace does not have yet (or has with another type). */
export async function searchAttributeStatus(
  connection: ConnectionLike,
  namespace: string,
): Promise<SearchAttributeSetup & { missing: string[] }> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const have = customAttributes ?? {};
  const result: SearchAttributeSetup & { missing: string[] } = { added: [], present: [], wrongType: [], missing: [] };
  for (const { name } of SEARCH_ATTRIBUTE_KEYS) {
    const type = have[name];
    if (type === undefined || type === null) result.missing.push(name);
    else if (Number(type) !== KEYWORD) result.wrongType.push({ name, type: typeName(type) });
    else result.present.push(name);
  }
  return result;
}

/**
 * Registers LifeboatCluster, LifeboatRun and LifeboatOutcome (Keyword) on a namespace, skipping those it has:
 * idempotent, so `lifeboat temporal setup` can run on every deploy. Temporal fails a workflow task that sets an
 * unregistered attribute, so this must run once per namespace before the worker takes work.
 */
export async function setupSearchAttributes(connection: ConnectionLike, namespace: string): Promise<SearchAttributeSetup> {
  const status = await searchAttributeStatus(connection, namespace);
  if (status.missing.length) {
    try {
      await connection.operatorService.addSearchAttributes({
        namespace,
        searchAttributes: Object.fromEntries(status.missing.map((name) => [name, KEYWORD])),
      });
    } catch (err) {
      // Another setup (a second replica's deploy) may have added them meanwhile: that is success too.
      const again = await searchAttributeStatus(connection, namespace);
      if (again.missing.length) throw err;
    }
  }
  return { added: status.missing, present: status.present, wrongType: status.wrongType };
}
