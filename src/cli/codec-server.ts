import { Command } from 'commander';
import { loadConfig } from '../config/load';
import { resolveSecret } from '../secrets';
import { startCodecServer } from '../temporal/codec-server';
import { temporalTarget } from '../temporal/connection';
import { payloadCodec } from '../temporal/data-converter';
import { configFileOf } from './config';

export function codecServerCommand(): Command {
  return new Command('codec-server')
    .description('serve POST /encode and /decode for the Temporal UI (--ui-codec-endpoint) with the payload encryption keys')
    .option('--listen <host:port>', 'address to listen on (default: temporal.codecServer.listen, 127.0.0.1:8089)')
    .action(async (opts: { listen?: string }, cmd: Command) => {
      const config = await loadConfig(configFileOf(cmd));
      const codec = payloadCodec(config);
      if (!codec)
        throw new Error(
          'temporal.payloadEncryption: not set; there is nothing to decode (set temporal.payloadEncryption.keyId to a key of encryptionKeys)',
        );
      const cs = config.temporal.codecServer ?? { listen: '127.0.0.1:8089', uiOrigins: ['http://127.0.0.1:8233', 'http://localhost:8233'] };
      const listen = opts.listen ?? cs.listen;
      const m = /^(.*):(\d+)$/.exec(listen);
      if (!m) throw new Error(`--listen: expected host:port, got "${listen}"`);
      const token = cs.token ? (await resolveSecret(cs.token, 'temporal.codecServer.token')).toString('utf8').trim() : undefined;
      const { namespace } = await temporalTarget(config);
      const server = await startCodecServer({
        codec,
        host: m[1].replace(/^\[|\]$/g, ''),
        port: Number(m[2]),
        origins: cs.uiOrigins,
        namespaces: [namespace],
        token,
      });
      console.log(
        `codec server on ${server.url} (namespace ${namespace}; UI origins ${cs.uiOrigins.join(', ')}${token ? '; bearer token required' : ''})`,
      );
      await new Promise<void>((resolve) => {
        for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
      });
      await server.close();
    });
}
