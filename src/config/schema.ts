import { z } from 'zod';

/**
 * The config file describes the clusters the engine protects. Every string that ends up in a remote command or an
 * object key is constrained here, so that bad input fails at start-up with its path named, long before a 3 a.m.
 * recovery. Secrets are only ever referenced (a file path or an environment variable name), never inlined: the
 * schema is strict, so a stray `secretAccessKey:` is rejected as an unknown key.
 */

/** DNS-label style names: safe in workflow ids, schedule ids, object keys and remote paths. */
export const name = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'expected a lowercase name of letters, digits and "-" (like "prod-eu1")');

/** Absolute POSIX paths without shell metacharacters, spaces or "..": they are used on the node. */
export const absolutePath = z
  .string()
  .regex(/^\/[A-Za-z0-9._+@/-]*$/, 'expected an absolute path of letters, digits and . _ + @ / - only (no spaces or shell characters)')
  .refine((p) => !p.split('/').includes('..'), 'expected a path without ".." segments');

const hostName = z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$/, 'expected a host name or IP address');

const envVarName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name');

/** A secret is read by activities from a file or an environment variable at the moment it is needed. */
export const secretRef = z.union([z.object({ file: absolutePath }).strict(), z.object({ env: envVarName }).strict()]);

const duration = z.string().regex(/^(\d+(ms|s|m|h|d))+$/, 'expected a duration like "30s", "5m", "1h30m" or "7d"');

const sshHostKey = z
  .string()
  .regex(
    /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521) [A-Za-z0-9+/=]+( .*)?$|^SHA256:[A-Za-z0-9+/]{43}=?$/,
    'expected a public host key ("ssh-ed25519 AAAA...") or its fingerprint ("SHA256:...") as printed by `ssh-keyscan` / `ssh-keygen -lf`',
  );

export const nodeSchema = z
  .object({
    name,
    host: hostName,
    port: z.number().int().min(1).max(65535).default(22),
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]*$/, 'expected a Unix user name')
      .default('root'),
    /** Private key on the worker's machine; without it the SSH agent at SSH_AUTH_SOCK is used. */
    privateKey: secretRef.optional(),
    /** Host keys are always checked: pin the key itself, or name a known_hosts file that holds it. */
    hostKey: sshHostKey.optional(),
    knownHostsFile: absolutePath.optional(),
  })
  .strict()
  .refine((n) => n.hostKey !== undefined || n.knownHostsFile !== undefined, {
    message: 'set hostKey (from `ssh-keyscan -t ed25519 HOST`) or knownHostsFile: host keys are never ignored',
    path: ['hostKey'],
    // Report this alongside other problems of the same node, not only once they are fixed.
    when: () => true,
  });

const kubeadmPki = '/etc/kubernetes/pki';

export const etcdSchema = z
  .object({
    /** As seen from the control-plane node (the snapshot is taken there). */
    endpoint: z
      .string()
      .regex(/^https?:\/\/[A-Za-z0-9.:[\]-]+$/, 'expected a URL like https://127.0.0.1:2379')
      .default('https://127.0.0.1:2379'),
    caFile: absolutePath.default(`${kubeadmPki}/etcd/ca.crt`),
    certFile: absolutePath.default(`${kubeadmPki}/etcd/healthcheck-client.crt`),
    keyFile: absolutePath.default(`${kubeadmPki}/etcd/healthcheck-client.key`),
    /** Commands on the node: a name looked up in PATH or an absolute path. */
    etcdctl: z.union([absolutePath, z.literal('etcdctl')]).default('etcdctl'),
    etcdutl: z.union([absolutePath, z.literal('etcdutl')]).default('etcdutl'),
    /**
     * Direct mode: the worker takes the snapshot itself, from endpoints it can reach, with certificates on the
     * worker. The node is still reached over SSH for the PKI, manifests and kubeconfigs archive.
     */
    direct: z
      .object({
        endpoints: z.array(z.string().regex(/^https?:\/\/[A-Za-z0-9.:[\]-]+$/, 'expected a URL like https://10.0.0.10:2379')).min(1),
        caFile: absolutePath,
        certFile: absolutePath,
        keyFile: absolutePath,
        /** Commands on the worker: a name looked up in PATH or an absolute path. */
        etcdctl: z.union([absolutePath, z.literal('etcdctl')]).default('etcdctl'),
        etcdutl: z.union([absolutePath, z.literal('etcdutl')]).default('etcdutl'),
        /** Where the worker keeps snapshots in flight (removed once the backup is confirmed). */
        workDir: absolutePath.default('/var/lib/lifeboat'),
      })
      .strict()
      .optional(),
  })
  .strict();

export const nodePathsSchema = z
  .object({
    kubernetesDir: absolutePath.default('/etc/kubernetes'),
    manifestsDir: absolutePath.default('/etc/kubernetes/manifests'),
    pkiDir: absolutePath.default(kubeadmPki),
    etcdDataDir: absolutePath.default('/var/lib/etcd'),
    /** The kubelet's folder: its config.yaml, kubeadm-flags.env and client certificate (pki/) go into each backup. */
    kubeletDir: absolutePath.default('/var/lib/kubelet'),
    /** Where the engine keeps its run-specific files (snapshots in flight, moved-aside manifests). */
    workDir: absolutePath.default('/var/lib/lifeboat'),
  })
  .strict();

export const storageSchema = z
  .object({
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name'),
    prefix: z
      .string()
      .regex(/^([A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*)?$/, 'expected a key prefix like "backups/etcd" (no leading or trailing "/")')
      .default('lifeboat'),
    region: z
      .string()
      .regex(/^[a-z0-9-]+$/)
      .default('us-east-1'),
    /** For S3-compatible stores (MinIO, Ceph, ...); AWS S3 needs none. */
    endpoint: z.string().url().optional(),
    forcePathStyle: z.boolean().default(false),
    /** Bucket lifecycle rules written by `lifeboat storage lifecycle apply` for this cluster's prefix. */
    lifecycle: z
      .object({
        transitionAfterDays: z.number().int().min(1).optional(),
        storageClass: z
          .enum(['STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER', 'GLACIER_IR', 'DEEP_ARCHIVE'])
          .default('GLACIER'),
        expireAfterDays: z.number().int().min(1).optional(),
        abortIncompleteUploadsAfterDays: z.number().int().min(1).default(1),
      })
      .strict()
      .optional(),
    /**
     * Write-once retention on every object a backup uploads, for buckets created with S3 Object Lock: until it
     * expires nobody (GOVERNANCE: nobody without s3:BypassGovernanceRetention) can delete or overwrite the backup.
     */
    objectLock: z
      .object({
        mode: z.enum(['GOVERNANCE', 'COMPLIANCE']).default('GOVERNANCE'),
        days: z.number().int().min(1),
      })
      .strict()
      .optional(),
    /** Without credentials the AWS default chain is used (env, profile, instance role). */
    credentials: z
      .union([z.object({ profile: z.string().min(1) }).strict(), z.object({ accessKeyId: secretRef, secretAccessKey: secretRef }).strict()])
      .optional(),
  })
  .strict();

export const retentionSchema = z
  .object({
    keepLast: z.number().int().min(1).default(5),
    daily: z.number().int().min(0).default(7),
    weekly: z.number().int().min(0).default(4),
    monthly: z.number().int().min(0).default(6),
  })
  .strict();

export const backupSchema = z
  .object({
    /** Cron expressions (UTC unless timezone is set); several are allowed. */
    cron: z.array(z.string().min(9)).min(1).default(['0 */6 * * *']),
    timezone: z.string().default('UTC'),
    jitter: duration.default('5m'),
    catchupWindow: duration.default('1h'),
    retention: retentionSchema.default(retentionSchema.parse({})),
    /** zstd by default (docs/backups.md, "Compression"): on the node before SSH when it has the tool, else on the worker. */
    compression: z.enum(['zstd', 'gzip', 'none']).default('zstd'),
    /** A key id from `encryptionKeys`; backups of PKI are refused without one unless allowUnencrypted. */
    encryptionKey: name.optional(),
    allowUnencrypted: z.boolean().default(false),
    /**
     * Continuous backups: etcd's changes between full backups, shipped as signed segments every few seconds, so a
     * recovery loses seconds and can land on a chosen moment (docs/continuous-backups.md). Needs encryptionKey.
     */
    continuous: z
      .object({
        /** A segment is cut this often (only between revisions): the recovery point under steady writes. */
        segmentSeconds: z.number().int().min(1).max(300).default(5),
        /** ...or sooner, once its events hold this many bytes (a write storm makes more, smaller segments). */
        maxSegmentBytes: z
          .number()
          .int()
          .min(64 * 1024)
          .max(64 * 1024 * 1024)
          .default(4 * 1024 * 1024),
      })
      .strict()
      .optional(),
  })
  .strict();

export const confirmSchema = z
  .object({
    /** How long an alert-triggered response keeps re-probing before it believes the alert. */
    window: duration.default('2m'),
    /** Probes spread over the window; every one must fail for the response to go on. */
    probes: z.number().int().min(1).max(60).default(4),
  })
  .strict();

export const recoverySchema = z
  .object({
    approval: z.enum(['required', 'auto']).default('required'),
    approvalTimeout: duration.default('1h'),
    /** Remove Node objects and leases of control-plane nodes that no longer exist after a restore. */
    removeStaleNodes: z.boolean().default(false),
    /**
     * What an alert may do for this cluster once confirmed and diagnosed: notify (report only), plan (a dry-run
     * recovery), approve (a recovery that waits for a human), auto (a recovery without waiting).
     */
    onAlert: z.enum(['notify', 'plan', 'approve', 'auto']).default('approve'),
    confirm: confirmSchema.default(confirmSchema.parse({})),
    /** A spare node (by name, from nodes) that takes over when the control-plane node is gone. */
    standbyNode: name.optional(),
    /**
     * After a recovery restored the cluster, another one within this window is refused unless a person overrides it:
     * a late second trigger would restore the same backup again and lose what was written in between. "0s" turns it off.
     */
    cooldown: duration.default('30m'),
  })
  .strict();

export const healthSchema = z
  .object({
    /** How often the health-<cluster> schedule probes the control plane. */
    interval: duration.default('1m'),
    /** Each probe's own timeout: one slow component or node never holds up the others. */
    timeout: duration.default('5s'),
  })
  .strict();

export const clusterSchema = z
  .object({
    name,
    nodes: z.array(nodeSchema).min(1, 'expected at least one control-plane node'),
    /** The API server as the engine reaches it to verify a restore; defaults to https://<first node host>:6443. */
    apiServer: z.string().url().optional(),
    etcd: etcdSchema.default(etcdSchema.parse({})),
    paths: nodePathsSchema.default(nodePathsSchema.parse({})),
    storage: storageSchema,
    backup: backupSchema.default(backupSchema.parse({})),
    recovery: recoverySchema.default(recoverySchema.parse({})),
    health: healthSchema.default(healthSchema.parse({})),
  })
  .strict();

/**
 * How the worker, the CLI, schedules and the alert receiver reach Temporal. Each setting can also come from the
 * environment variables Temporal's own CLI and SDKs read (TEMPORAL_ADDRESS, TEMPORAL_TLS_CLIENT_CERT_PATH, ...), which
 * win over the file: see src/temporal/connection-options.ts.
 */
export const temporalSchema = z
  .object({
    address: z.string().min(1).default('127.0.0.1:7233'),
    namespace: z.string().min(1).default('default'),
    taskQueue: z.string().min(1).default('lifeboat'),
    /**
     * `true` (or `{}`): TLS with the system's roots. An object: a private CA, a server name, a client certificate
     * for mTLS. `false`: plain text even with an API key.
     */
    tls: z
      .union([
        z.boolean(),
        z
          .object({
            /** PEM of the CA that signed the server's certificate; without it, the system's roots. */
            caFile: absolutePath.optional(),
            /** The name the server's certificate must carry, when it is not the host of `address` (also SNI). */
            serverName: z.string().min(1).optional(),
            /** mTLS: the client certificate and its private key (PEM), secret references. */
            clientCert: secretRef.optional(),
            clientKey: secretRef.optional(),
          })
          .strict()
          .refine((t) => (t.clientCert === undefined) === (t.clientKey === undefined), {
            message: 'set both clientCert and clientKey for mTLS, or neither',
            path: ['clientKey'],
          }),
      ])
      .optional(),
    /** Temporal Cloud API key (sent as a bearer token; turns TLS on unless `tls: false`). */
    apiKey: secretRef.optional(),
    /**
     * Encrypt every payload (workflow inputs, results, signals, queries, memos) with AES-256-GCM under this key of
     * `encryptionKeys`; any key of the ring decrypts, so keys can be rotated.
     */
    payloadEncryption: z.object({ keyId: name }).strict().optional(),
    /** `lifeboat codec-server`: lets the Temporal UI (and `temporal --codec-endpoint`) show decrypted payloads. */
    codecServer: z
      .object({
        listen: z
          .string()
          .regex(/^[A-Za-z0-9.:[\]-]+:\d+$/, 'expected host:port, like 127.0.0.1:8089')
          .default('127.0.0.1:8089'),
        /** Browser origins allowed to call it: the UI's address as the browser sees it. */
        uiOrigins: z.array(z.string().url()).min(1).default(['http://127.0.0.1:8233', 'http://localhost:8233']),
        /**
         * The token callers present (`temporal --codec-auth "Bearer ..."`, or the endpoint `http://host:port/<token>` the
         * UI is given). Required beyond loopback; on loopback, unset means a generated one in the data dir.
         */
        token: secretRef.optional(),
        /** Names it is reached by besides its listen address (a DNS name, a proxy's); other Host headers are refused. */
        hostnames: z
          .array(z.string().regex(/^[A-Za-z0-9.:[\]-]+$/, 'expected a host name or address, like codec.example.internal'))
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** Alert names that start a response when no `alerts.triggers` is configured: the shipped rules and kube-prometheus's. */
export const DEFAULT_ALERT_TRIGGERS = [
  'LifeboatControlPlaneComponentDown',
  'LifeboatEtcdNoLeader',
  'LifeboatEtcdDataLost',
  'LifeboatNodeUnreachable',
  'KubeAPIDown',
  'KubeAPITerminatedRequests',
  'etcdNoLeader',
  'etcdInsufficientMembers',
  'etcdMembersDown',
  'KubeSchedulerDown',
  'KubeControllerManagerDown',
];

export const alertsSchema = z
  .object({
    /** Bearer token Alertmanager sends (http_config.authorization.credentials); required to accept alerts. */
    token: secretRef.optional(),
    /** The alert label that names the cluster. */
    clusterLabel: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected a Prometheus label name')
      .default('cluster'),
    /** Alert names that start (or join) a response; others are acknowledged and ignored. */
    triggers: z
      .array(z.string().regex(/^[A-Za-z_:][A-Za-z0-9_:]*$/, 'expected an alert name'))
      .min(1)
      .default(DEFAULT_ALERT_TRIGGERS),
    /** Largest webhook body accepted. */
    maxBodyBytes: z
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 * 1024)
      .default(1024 * 1024),
    /** Optional TLS for the receiver (files on the worker). */
    tls: z.object({ certFile: absolutePath, keyFile: absolutePath }).strict().optional(),
    /** Outbound notifications (Slack-compatible JSON: {"text": ...}); the URL is a secret reference. */
    notify: z.object({ url: secretRef }).strict().optional(),
  })
  .strict();

/**
 * Restore drills (drill-<cluster> schedules, `lifeboat drill now`): where the worker — the drill host — keeps its
 * scratch space and which etcd and kube-apiserver binaries it runs a backup with. Never on a cluster's node.
 */
const minorVersion = z.string().regex(/^\d+\.\d+$/, 'expected a minor version like "3.6" or "1.34"');
/**
 * A drill host reached over SSH instead of the worker: declared and checked like a cluster's node. Its own tool maps
 * are paths on it (default: drill.etcd / drill.kubeApiserver, read as paths on the drill node).
 */
export const drillNodeSchema = nodeSchema.safeExtend({
  /** etcd minor version -> a folder on the drill node holding its etcd and etcdutl (3.5+) or etcdctl (3.4). */
  etcd: z.record(minorVersion, absolutePath).optional(),
  /** Kubernetes minor version -> kube-apiserver binary on the drill node. */
  kubeApiserver: z.record(minorVersion, absolutePath).optional(),
});

export const drillSchema = z
  .object({
    /** Drill on this node over SSH (never one of a cluster's nodes) instead of on the worker. */
    node: drillNodeSchema.optional(),
    /** Schedules drill-<cluster> for every cluster (`schedule sync`); `drill now` works either way. */
    enabled: z.boolean().default(false),
    cron: z.array(z.string().min(9)).min(1).default(['30 4 * * *']),
    timezone: z.string().default('UTC'),
    jitter: duration.default('10m'),
    /** Each drill works in <scratchDir>/<run key>, removed when it ends (also after a crash, by the next attempt). */
    scratchDir: absolutePath.default('/var/lib/lifeboat/drills'),
    /** etcd minor version -> a folder on the worker holding its etcd and etcdutl (3.5+) or etcdctl (3.4). */
    etcd: z.record(minorVersion, absolutePath).default({}),
    /** Kubernetes minor version -> kube-apiserver binary on the worker; without one the drill counts keys in etcd only. */
    kubeApiserver: z.record(minorVersion, absolutePath).default({}),
    /** Objects read one by one per resource through the API (decoded, Secrets included). */
    sampleSize: z.number().int().min(1).max(100).default(3),
    /** How long the throwaway etcd and kube-apiserver get to become ready. */
    startTimeout: duration.default('2m'),
  })
  .strict();

export const configSchema = z
  .object({
    temporal: temporalSchema.default(temporalSchema.parse({})),
    alerts: alertsSchema.default(alertsSchema.parse({})),
    /** Key ring: key id -> where the 32-byte key lives. Old ids stay so old backups can still be decrypted. */
    encryptionKeys: z.record(name, secretRef).default({}),
    drill: drillSchema.default(drillSchema.parse({})),
    clusters: z.array(clusterSchema).default([]),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    cfg.clusters.forEach((c, i) => {
      if (seen.has(c.name)) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'name'], message: `duplicate cluster name "${c.name}"` });
      seen.add(c.name);
      const nodeNames = new Set<string>();
      c.nodes.forEach((n, j) => {
        if (nodeNames.has(n.name))
          ctx.addIssue({ code: 'custom', path: ['clusters', i, 'nodes', j, 'name'], message: `duplicate node name "${n.name}"` });
        nodeNames.add(n.name);
      });
      const lc = c.storage.lifecycle;
      if (lc?.expireAfterDays !== undefined) {
        const keptDays = Math.max(c.backup.retention.daily, c.backup.retention.weekly * 7, c.backup.retention.monthly * 31);
        if (lc.expireAfterDays < keptDays) {
          ctx.addIssue({
            code: 'custom',
            path: ['clusters', i, 'storage', 'lifecycle', 'expireAfterDays'],
            message: `${lc.expireAfterDays} days would expire backups that backup.retention keeps for ${keptDays} days; raise it to at least ${keptDays} or shorten the retention`,
          });
        }
        if (lc.transitionAfterDays !== undefined && lc.transitionAfterDays >= lc.expireAfterDays) {
          ctx.addIssue({
            code: 'custom',
            path: ['clusters', i, 'storage', 'lifecycle', 'transitionAfterDays'],
            message: 'must be less than expireAfterDays',
          });
        }
      }
      const standby = c.recovery.standbyNode;
      if (standby !== undefined && !nodeNames.has(standby)) {
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', i, 'recovery', 'standbyNode'],
          message: `unknown node "${standby}": name one of this cluster's nodes (${[...nodeNames].join(', ')})`,
        });
      }
      const key = c.backup.encryptionKey;
      if (c.backup.continuous && key === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', i, 'backup', 'continuous'],
          message:
            'continuous backups sign and encrypt every segment with the backup key: set backup.encryptionKey, or remove backup.continuous',
        });
      }
      if (key !== undefined && !(key in cfg.encryptionKeys)) {
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', i, 'backup', 'encryptionKey'],
          message: `unknown key id "${key}": add it under encryptionKeys (known: ${Object.keys(cfg.encryptionKeys).join(', ') || 'none'})`,
        });
      }
    });
    const drillNode = cfg.drill.node;
    if (drillNode) {
      // A drill starts servers and fills a disk: never on a machine a cluster runs on (its control plane above all).
      for (const c of cfg.clusters)
        for (const n of c.nodes)
          if (n.host === drillNode.host && n.port === drillNode.port)
            ctx.addIssue({
              code: 'custom',
              path: ['drill', 'node', 'host'],
              message: `${drillNode.host}:${drillNode.port} is node "${n.name}" of cluster "${c.name}": a drill never runs on a cluster's node; name a separate machine, or remove drill.node to drill on the worker`,
            });
    }
    const payloadKey = cfg.temporal.payloadEncryption?.keyId;
    if (payloadKey !== undefined && !(payloadKey in cfg.encryptionKeys)) {
      ctx.addIssue({
        code: 'custom',
        path: ['temporal', 'payloadEncryption', 'keyId'],
        message: `unknown key id "${payloadKey}": add it under encryptionKeys (known: ${Object.keys(cfg.encryptionKeys).join(', ') || 'none'})`,
      });
    }
  });

export type Config = z.infer<typeof configSchema>;
export type ClusterConfig = z.infer<typeof clusterSchema>;
export type NodeConfig = z.infer<typeof nodeSchema>;
export type StorageConfig = z.infer<typeof storageSchema>;
export type SecretRef = z.infer<typeof secretRef>;
export type AlertsConfig = z.infer<typeof alertsSchema>;
export type DrillConfig = z.infer<typeof drillSchema>;
export type DrillNodeConfig = z.infer<typeof drillNodeSchema>;
