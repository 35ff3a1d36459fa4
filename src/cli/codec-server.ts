import { Command } from 'commander';
import { loadConfig } from '../config/load';
import { dataDir } from '../data-dir';
import { startCodecServer } from '../temporal/codec-server';
import { codecServerToken } from '../temporal/codec-token';
import { temporalTarget } from '../temporal/connection';
import { payloadCodec } from '../temporal/data-converter';
import { configFileOf } from './config';

export function codecServerCommand(): Command {
  return new Command('codec-server')
    .description('serve POST /decode (and /encode) for the Temporal UI (--ui-codec-endpoint) with the payload encryption keys')
    .option('--listen <host:port>', 'address to listen on (default: temporal.codecServer.listen, 127.0.0.1:8089)')
    .option('--encode', "also serve POST /encode: the UI's start-workflow and signal forms encrypt their input through it")
    .action(async (opts: { listen?: string; encode?: boolean }, cmd: Command) => {
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
      const host = m[1].replace(/^\[|\]$/g, '');
      const { token, file } = await codecServerToken(config, { listen, host, dataDir: dataDir() });
      const { namespace } = await temporalTarget(config);
      const server = await startCodecServer({
        codec,
        host,
        port: Number(m[2]),
        origins: cs.uiOrigins,
        namespaces: [namespace],
        token,
        hostnames: cs.hostnames,
        encode: opts.encode,
      });
      // The token itself is never printed: the operator reads it from the file (or knows the configured secret).
      const secret = file ? `"$(cat ${file})"` : '"$TOKEN"';
      console.log(
        [
          `codec server on ${server.url} (namespace ${namespace}; UI origins ${cs.uiOrigins.join(', ')}; POST /encode ${opts.encode ? 'on' : 'off'})`,
          file ? `token: generated, in ${file} (mode 0600)` : 'token: temporal.codecServer.token',
          `  the UI:  --ui-codec-endpoint ${server.url}/${secret}   (or TEMPORAL_CODEC_ENDPOINT, or the UI's Codec Server setting)`,
          `  the CLI: --codec-endpoint ${server.url} --codec-auth "Bearer ${file ? `$(cat ${file})` : '$TOKEN'}"`,
        ].join('\n'),
      );
      await new Promise<void>((resolve) => {
        for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
      });
      await server.close();
    });
}
