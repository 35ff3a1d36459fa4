import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { LIFEBOAT_SEARCH_ATTRIBUTES, type SearchAttributeTypeName } from './search-attributes';

/**
 * The proto enum of each type lifeboat uses. Here, not beside the attributes: the workflows import those, and this
 * import would put @temporalio/proto's whole descriptor tree (and protobufjs) into the workflow bundle and its isolate.
 */
const INDEXED_VALUE_TYPE: Record<SearchAttributeTypeName, temporal.api.enums.v1.IndexedValueType> = {
  Keyword: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
};

export interface TemporalCheck {
  serverVersion: string;
  namespace: { name: string; state: string; retention?: string };
  /** Lifeboat's attributes the namespace lacks, or has with another type. */
  missing: string[];
  wrongType: { name: string; has: string; wants: string }[];
}

/** A search attribute type as people write it (keyword, text, int, ...). */
export const typeName = (t: temporal.api.enums.v1.IndexedValueType): string =>
  (temporal.api.enums.v1.IndexedValueType[t] ?? String(t)).replace('INDEXED_VALUE_TYPE_', '').toLowerCase();

/** Reads what the engine needs of the server: it answers, the namespace exists, lifeboat's search attributes are there. */
export async function checkTemporal(client: Client): Promise<TemporalCheck> {
  const namespace = client.options.namespace;
  const info = await client.workflowService.getSystemInfo({});
  const ns = await client.workflowService.describeNamespace({ namespace });
  const attrs = await client.connection.operatorService.listSearchAttributes({ namespace });
  const custom = attrs.customAttributes ?? {};
  const missing: string[] = [];
  const wrongType: TemporalCheck['wrongType'] = [];
  for (const [name, type] of Object.entries(LIFEBOAT_SEARCH_ATTRIBUTES)) {
    const has = custom[name];
    if (has === undefined) missing.push(name);
    else if (has !== INDEXED_VALUE_TYPE[type]) wrongType.push({ name, has: typeName(has), wants: type.toLowerCase() });
  }
  const retention = ns.config?.workflowExecutionRetentionTtl?.seconds;
  return {
    serverVersion: info.serverVersion ?? 'unknown',
    namespace: {
      name: ns.namespaceInfo?.name ?? namespace,
      state: (temporal.api.enums.v1.NamespaceState[ns.namespaceInfo?.state ?? 0] ?? 'unknown')
        .replace('NAMESPACE_STATE_', '')
        .toLowerCase(),
      ...(retention != null ? { retention: `${Math.round(Number(retention) / 3600)}h` } : {}),
    },
    missing,
    wrongType,
  };
}
