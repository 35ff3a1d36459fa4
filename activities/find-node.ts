import type { ClusterConfig, NodeConfig } from '../src/config/schema';
import { ConfigError } from '../src/config/load';

export function findNode(cluster: ClusterConfig, name: string): NodeConfig {
  const node = cluster.nodes.find((n) => n.name === name);
  if (!node) {
    throw new ConfigError('node', [`cluster "${cluster.name}" has no node "${name}": known nodes are ${cluster.nodes.map((n) => n.name).join(', ')}`]);
  }
  return node;
}
