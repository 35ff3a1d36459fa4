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
    name: name.describe('the node\'s name: lowercase letters, digits, "-"'),
    host: hostName.describe('address or DNS name the worker reaches over SSH'),
    port: z.number().int().min(1).max(65535).default(22).describe('SSH port'),
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]*$/, 'expected a Unix user name')
      .default('root')
      .describe('SSH user'),
    privateKey: secretRef.optional().describe("SSH private key on the worker's machine; without it, the SSH agent at SSH_AUTH_SOCK"),
    // Host keys are always checked: pin the key itself, or name a known_hosts file that holds it.
    hostKey: sshHostKey
      .optional()
      .describe("the node's pinned host key, as `ssh-keyscan -t ed25519 HOST` prints it (or its SHA256 fingerprint)"),
    knownHostsFile: absolutePath.optional().describe("a known_hosts file holding the node's host key, instead of hostKey"),
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
    endpoint: z
      .string()
      .regex(/^https?:\/\/[A-Za-z0-9.:[\]-]+$/, 'expected a URL like https://127.0.0.1:2379')
      .default('https://127.0.0.1:2379')
      .describe("etcd's client URL as seen from the control-plane node (the snapshot is taken there)"),
    caFile: absolutePath.default(`${kubeadmPki}/etcd/ca.crt`).describe("etcd's CA on the node"),
    certFile: absolutePath.default(`${kubeadmPki}/etcd/healthcheck-client.crt`).describe('etcd client certificate on the node'),
    keyFile: absolutePath.default(`${kubeadmPki}/etcd/healthcheck-client.key`).describe('its key, on the node'),
    etcdctl: z
      .union([absolutePath, z.literal('etcdctl')])
      .default('etcdctl')
      .describe('etcdctl on the node: a name looked up in PATH or an absolute path'),
    etcdutl: z
      .union([absolutePath, z.literal('etcdutl')])
      .default('etcdutl')
      .describe('etcdutl on the node: a name looked up in PATH or an absolute path'),
    direct: z
      .object({
        endpoints: z
          .array(z.string().regex(/^https?:\/\/[A-Za-z0-9.:[\]-]+$/, 'expected a URL like https://10.0.0.10:2379'))
          .min(1)
          .describe("etcd's client URLs as the worker reaches them"),
        caFile: absolutePath.describe("etcd's CA, on the worker"),
        certFile: absolutePath.describe('an etcd client certificate, on the worker'),
        keyFile: absolutePath.describe('its key, on the worker'),
        etcdctl: z
          .union([absolutePath, z.literal('etcdctl')])
          .default('etcdctl')
          .describe('etcdctl on the worker: a name looked up in PATH or an absolute path'),
        etcdutl: z
          .union([absolutePath, z.literal('etcdutl')])
          .default('etcdutl')
          .describe('etcdutl on the worker: a name looked up in PATH or an absolute path'),
        workDir: absolutePath
          .default('/var/lib/lifeboat')
          .describe('only for backups started by older versions (files); streamed backups use no disk'),
      })
      .strict()
      .optional()
      .describe(
        "direct mode: the worker streams etcd's snapshot to the bucket itself, from endpoints it can reach, with certificates on the worker; the node is still reached over SSH for the PKI, manifests and kubeconfigs archive",
      ),
  })
  .strict();

export const nodePathsSchema = z
  .object({
    kubernetesDir: absolutePath.default('/etc/kubernetes').describe("kubeadm's folder on the node, archived with each backup"),
    manifestsDir: absolutePath.default('/etc/kubernetes/manifests').describe('the static-pod manifests'),
    pkiDir: absolutePath.default(kubeadmPki).describe("the cluster's PKI"),
    etcdDataDir: absolutePath.default('/var/lib/etcd').describe("etcd's data dir"),
    kubeletDir: absolutePath
      .default('/var/lib/kubelet')
      .describe("the kubelet's folder: its config.yaml, kubeadm-flags.env and client certificate (pki/) go into each backup"),
    workDir: absolutePath
      .default('/var/lib/lifeboat')
      .describe('where the engine keeps its run-specific files on the node (snapshots in flight, moved-aside manifests)'),
  })
  .strict();

export const storageSchema = z
  .object({
    bucket: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name')
      .describe('the S3 bucket'),
    prefix: z
      .string()
      .regex(/^([A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*)?$/, 'expected a key prefix like "backups/etcd" (no leading or trailing "/")')
      .default('lifeboat')
      .describe('key prefix: objects go under <prefix>/<cluster>/'),
    region: z
      .string()
      .regex(/^[a-z0-9-]+$/)
      .default('us-east-1')
      .describe("the bucket's region"),
    endpoint: z.string().url().optional().describe('for S3-compatible stores (MinIO, Ceph, ...); AWS S3 needs none'),
    forcePathStyle: z
      .boolean()
      .default(false)
      .describe('path-style requests (bucket in the path), as MinIO and most S3-compatible stores want'),
    lifecycle: z
      .object({
        transitionAfterDays: z.number().int().min(1).optional().describe('move backups to storageClass after this many days'),
        storageClass: z
          .enum(['STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER', 'GLACIER_IR', 'DEEP_ARCHIVE'])
          .default('GLACIER')
          .describe('the storage class of the transition (manifests are never transitioned)'),
        expireAfterDays: z
          .number()
          .int()
          .min(1)
          .optional()
          .describe('delete backups after this many days; refused when it would expire backups the retention keeps'),
        abortIncompleteUploadsAfterDays: z
          .number()
          .int()
          .min(1)
          .default(1)
          .describe('abort unfinished multipart uploads after this many days'),
      })
      .strict()
      .optional()
      .describe("bucket lifecycle rules written by `lifeboat storage lifecycle apply` for this cluster's prefix"),
    // Until it expires nobody (GOVERNANCE: nobody without s3:BypassGovernanceRetention) can delete or overwrite a backup.
    objectLock: z
      .object({
        mode: z.enum(['GOVERNANCE', 'COMPLIANCE']).default('GOVERNANCE').describe('S3 Object Lock retention mode'),
        days: z.number().int().min(1).describe('how long each object is locked'),
      })
      .strict()
      .optional()
      .describe('WORM retention on every object a backup uploads; the bucket must have been created with Object Lock'),
    credentials: z
      .union([
        z.object({ profile: z.string().min(1).describe('an AWS profile name') }).strict(),
        z
          .object({
            accessKeyId: secretRef.describe('the access key id, a secret reference'),
            secretAccessKey: secretRef.describe('the secret access key, a secret reference'),
          })
          .strict(),
      ])
      .optional()
      .describe('S3 credentials; without them the AWS default chain (environment, profile, instance role)'),
  })
  .strict();

export const retentionSchema = z
  .object({
    keepLast: z.number().int().min(1).default(5).describe('the newest backups always kept'),
    daily: z.number().int().min(0).default(7).describe('days for which the newest backup of the day is kept'),
    weekly: z.number().int().min(0).default(4).describe('weeks for which the newest backup of the week is kept'),
    monthly: z.number().int().min(0).default(6).describe('months for which the newest backup of the month is kept'),
  })
  .strict();

export const backupSchema = z
  .object({
    cron: z
      .array(z.string().min(9))
      .min(1)
      .default(['0 */6 * * *'])
      .describe('cron expressions of the backup-<cluster> schedule (in timezone); several are allowed'),
    timezone: z.string().default('UTC').describe('time zone of cron'),
    jitter: duration.default('5m').describe('random delay of each scheduled run'),
    catchupWindow: duration.default('1h').describe('how late a missed run (server down) may still start'),
    retention: retentionSchema
      .default(retentionSchema.parse({}))
      .describe('keep-last N plus daily/weekly/monthly, over believed backups only; never the newest verified backup'),
    compression: z
      .enum(['zstd', 'gzip', 'none'])
      .default('zstd')
      .describe('on the node before SSH when it has the tool, else on the worker (docs/backups.md, "Compression")'),
    encryptionKey: name
      .optional()
      .describe('a key id of encryptionKeys; without one a backup fails at its plan step unless allowUnencrypted'),
    allowUnencrypted: z.boolean().default(false).describe("store backups (with the cluster's PKI) unencrypted and unsigned"),
    streamWhileSaving: z
      .boolean()
      .default(false)
      .describe(
        "SSH mode: upload the snapshot while the node's etcdctl saves it (read as it grows), instead of saving it first; off by default: it pays only where the node has cores to spare (docs/backups.md)",
      ),
    continuous: z
      .object({
        segmentSeconds: z
          .number()
          .int()
          .min(1)
          .max(300)
          .default(5)
          .describe('a segment is cut this often (only between revisions): the recovery point under steady writes'),
        maxSegmentBytes: z
          .number()
          .int()
          .min(64 * 1024)
          .max(64 * 1024 * 1024)
          .default(4 * 1024 * 1024)
          .describe('...or sooner, once its events hold this many bytes (a write storm makes more, smaller segments)'),
      })
      .strict()
      .optional()
      .describe(
        "continuous backups: etcd's changes between full backups, shipped as signed segments every few seconds, so a recovery loses seconds and can land on a chosen moment (docs/continuous-backups.md); needs encryptionKey",
      ),
  })
  .strict();

export const confirmSchema = z
  .object({
    window: duration.default('2m').describe('how long an alert-triggered response keeps re-probing before it believes the alert'),
    probes: z
      .number()
      .int()
      .min(1)
      .max(60)
      .default(4)
      .describe('probes spread over the window; every one must fail for the response to go on'),
  })
  .strict();

export const recoverySchema = z
  .object({
    approval: z
      .enum(['required', 'auto'])
      .default('required')
      .describe('every recovery whose input does not choose (UI, schedules, scripts): wait for approve/reject, or not'),
    approvalTimeout: duration.default('1h').describe('without a decision by then the recovery ends and nothing is changed'),
    removeStaleNodes: z
      .boolean()
      .default(false)
      .describe('remove Node objects and leases of control-plane nodes that no longer exist after a restore'),
    onAlert: z
      .enum(['notify', 'plan', 'approve', 'auto'])
      .default('approve')
      .describe(
        'what a confirmed, diagnosed alert may do: notify (report only), plan (a dry-run recovery), approve (a recovery that waits for a person), auto (a recovery without waiting)',
      ),
    confirm: confirmSchema.default(confirmSchema.parse({})).describe('re-probes before an alert is believed'),
    standbyNode: name.optional().describe('a node of this cluster (by name) that takes over when the control-plane node is gone'),
    // A late second trigger would restore the same backup again and lose what was written in between.
    cooldown: duration
      .default('30m')
      .describe('after a successful restore, another within this window needs overrideCooldown: true; "0s" turns it off'),
  })
  .strict();

export const healthSchema = z
  .object({
    interval: duration.default('1m').describe('how often the health-<cluster> schedule probes the control plane'),
    timeout: duration.default('5s').describe("each probe's own timeout: one slow component or node never holds up the others"),
  })
  .strict();

export const clusterSchema = z
  .object({
    name: name.describe('the cluster\'s name: lowercase letters, digits, "-"'),
    site: name
      .optional()
      .describe(
        "where the workers that run this cluster's backups, checks and recoveries are (a datacenter, a network): its runs go to task queue <temporal.taskQueue>-<site>, polled only by `lifeboat worker --site <site>`; without one, workers started without --site run it (docs/fleets.md)",
      ),
    nodes: z
      .array(nodeSchema)
      .min(1, 'expected at least one control-plane node')
      .describe('the control-plane node (and any spare that may take over), reached over SSH'),
    apiServer: z
      .string()
      .url()
      .optional()
      .describe('the API server as the engine reaches it to verify a restore; default: https://<first node host>:6443'),
    etcd: etcdSchema.default(etcdSchema.parse({})).describe('etcd as seen from the node; kubeadm defaults'),
    paths: nodePathsSchema.default(nodePathsSchema.parse({})).describe('folders on the node; kubeadm defaults'),
    storage: storageSchema.describe("where the cluster's backups are stored (any S3-compatible store)"),
    backup: backupSchema.default(backupSchema.parse({})).describe('the backup schedule, retention, compression and encryption'),
    recovery: recoverySchema.default(recoverySchema.parse({})).describe('approval, alert policy and safety rails of recoveries'),
    health: healthSchema.default(healthSchema.parse({})).describe('the health-<cluster> schedule'),
  })
  .strict();

/**
 * How the worker, the CLI, schedules and the alert receiver reach Temporal. Each setting can also come from the
 * environment variables Temporal's own CLI and SDKs read (TEMPORAL_ADDRESS, TEMPORAL_TLS_CLIENT_CERT_PATH, ...), which
 * win over the file: see src/temporal/connection-options.ts.
 */
export const temporalSchema = z
  .object({
    address: z.string().min(1).default('127.0.0.1:7233').describe("Temporal's frontend, host:port (TEMPORAL_ADDRESS wins)"),
    namespace: z.string().min(1).default('default').describe('the Temporal namespace (TEMPORAL_NAMESPACE wins)'),
    taskQueue: z.string().min(1).default('lifeboat').describe("the worker's task queue (LIFEBOAT_TASK_QUEUE wins)"),
    tls: z
      .union([
        z.boolean(),
        z
          .object({
            caFile: absolutePath.optional().describe("PEM of the CA that signed the server's certificate; without it, the system's roots"),
            serverName: z
              .string()
              .min(1)
              .optional()
              .describe("the name the server's certificate must carry, when it is not the host of address (also SNI)"),
            clientCert: secretRef.optional().describe('mTLS: the client certificate (PEM), a secret reference'),
            clientKey: secretRef.optional().describe('mTLS: its private key (PEM), a secret reference'),
          })
          .strict()
          .refine((t) => (t.clientCert === undefined) === (t.clientKey === undefined), {
            message: 'set both clientCert and clientKey for mTLS, or neither',
            path: ['clientKey'],
          }),
      ])
      .optional()
      .describe(
        "`true` (or `{}`): TLS with the system's roots; an object: a private CA, a server name, a client certificate for mTLS; `false`: plain text even with an API key",
      ),
    apiKey: secretRef.optional().describe('Temporal Cloud API key, sent as a bearer token; turns TLS on unless `tls: false`'),
    deployment: z
      .object({
        name: z
          .string()
          .regex(/^[A-Za-z0-9_-]{1,100}$/, 'expected letters, digits, - and _')
          .describe('the Worker Deployment name, the same for every version (LIFEBOAT_DEPLOYMENT_NAME wins)'),
        buildId: z
          .string()
          .regex(/^[A-Za-z0-9_.+-]{1,200}$/, 'expected letters, digits, ., +, - and _')
          .optional()
          .describe(
            "this worker's version within it (LIFEBOAT_BUILD_ID wins); default: the package version and a hash of the workflow bundle, which changes exactly when the workflow code does",
          ),
      })
      .strict()
      .optional()
      .describe(
        'Worker Versioning (Worker Deployments), off by default: recoveries stay on the worker version they started on, other runs move to the current version; see docs/upgrades.md',
      ),
    payloadEncryption: z
      .object({ keyId: name.describe('a key id of encryptionKeys') })
      .strict()
      .optional()
      .describe(
        'encrypt every payload (workflow inputs, results, signals, queries, memos) with AES-256-GCM under this key; any key of the ring decrypts, so keys can be rotated',
      ),
    codecServer: z
      .object({
        listen: z
          .string()
          .regex(/^[A-Za-z0-9.:[\]-]+:\d+$/, 'expected host:port, like 127.0.0.1:8089')
          .default('127.0.0.1:8089')
          .describe('host:port it listens on'),
        uiOrigins: z
          .array(z.string().url())
          .min(1)
          .default(['http://127.0.0.1:8233', 'http://localhost:8233'])
          .describe("browser origins allowed to call it: the UI's address as the browser sees it"),
        token: secretRef
          .optional()
          .describe(
            'the token callers present (`temporal --codec-auth "Bearer ..."`, or the endpoint `http://host:port/<token>` the UI is given); required beyond loopback; on loopback, unset means a generated one in the data dir',
          ),
        hostnames: z
          .array(z.string().regex(/^[A-Za-z0-9.:[\]-]+$/, 'expected a host name or address, like codec.example.internal'))
          .optional()
          .describe("names it is reached by besides its listen address (a DNS name, a proxy's); other Host headers are refused"),
      })
      .strict()
      .optional()
      .describe('`lifeboat codec-server`: lets the Temporal UI (and `temporal --codec-endpoint`) show decrypted payloads'),
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
    token: secretRef
      .optional()
      .describe(
        'bearer token Alertmanager sends (http_config.authorization.credentials); required to accept alerts; at least 16 characters',
      ),
    clusterLabel: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected a Prometheus label name')
      .default('cluster')
      .describe('the alert label that names the cluster'),
    triggers: z
      .array(z.string().regex(/^[A-Za-z_:][A-Za-z0-9_:]*$/, 'expected an alert name'))
      .min(1)
      .default(DEFAULT_ALERT_TRIGGERS)
      .describe(
        "alert names that start (or join) a response; others are acknowledged and ignored; default: the shipped rules' and kube-prometheus's",
      ),
    maxBodyBytes: z
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 * 1024)
      .default(1024 * 1024)
      .describe('largest webhook body accepted (larger: 413)'),
    tls: z
      .object({
        certFile: absolutePath.describe('certificate (PEM) on the worker'),
        keyFile: absolutePath.describe('its key, on the worker'),
      })
      .strict()
      .optional()
      .describe('TLS for the receiver'),
    notify: z
      .object({ url: secretRef.describe("the webhook URL (it carries Slack's token), a secret reference") })
      .strict()
      .optional()
      .describe('Slack-compatible JSON ({"text": ...}) posted on each decision of a response'),
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
  etcd: z
    .record(minorVersion, absolutePath)
    .optional()
    .describe('etcd minor version -> a folder on the drill node holding its etcd and etcdutl (3.5+) or etcdctl (3.4); default: drill.etcd'),
  kubeApiserver: z
    .record(minorVersion, absolutePath)
    .optional()
    .describe('Kubernetes minor version -> kube-apiserver binary on the drill node; default: drill.kubeApiserver'),
});

export const drillSchema = z
  .object({
    node: drillNodeSchema.optional().describe("drill on this node over SSH (never one of a cluster's nodes) instead of on the worker"),
    enabled: z
      .boolean()
      .default(false)
      .describe('schedules drill-<cluster> for every cluster (`schedule sync`); `drill now` works either way'),
    cron: z.array(z.string().min(9)).min(1).default(['30 4 * * *']).describe('cron expressions of the drill-<cluster> schedules'),
    timezone: z.string().default('UTC').describe('time zone of cron'),
    jitter: duration.default('10m').describe('random delay of each scheduled drill'),
    scratchDir: absolutePath
      .default('/var/lib/lifeboat/drills')
      .describe(
        'each drill works in <scratchDir>/<run key> (room for a snapshot, its restored copy and the archive), removed when it ends (also after a crash, by the next attempt)',
      ),
    etcd: z
      .record(minorVersion, absolutePath)
      .default({})
      .describe('etcd minor version -> a folder on the worker holding its etcd and etcdutl (3.5+) or etcdctl (3.4)'),
    kubeApiserver: z
      .record(minorVersion, absolutePath)
      .default({})
      .describe('Kubernetes minor version -> kube-apiserver binary on the worker; without one the drill counts keys in etcd only'),
    sampleSize: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(3)
      .describe('objects read one by one per resource through the API (decoded, Secrets included)'),
    startTimeout: duration.default('2m').describe('how long the throwaway etcd and kube-apiserver get to become ready'),
  })
  .strict();

export const configSchema = z
  .object({
    temporal: temporalSchema
      .default(temporalSchema.parse({}))
      .describe('how the worker, the CLI, schedules and the alert receiver reach Temporal; TEMPORAL_* variables win (docs/production.md)'),
    alerts: alertsSchema.default(alertsSchema.parse({})).describe('the Alertmanager webhook (LIFEBOAT_ALERTS_ADDRESS); docs/alerts.md'),
    encryptionKeys: z
      .record(name, secretRef)
      .default({})
      .describe('key ring: key id -> where the 32-byte key lives; keep old ids so old backups stay readable'),
    drill: drillSchema.default(drillSchema.parse({})).describe('restore drills, on the worker or a drill node; docs/drills.md'),
    clusters: z.array(clusterSchema).default([]).describe('the clusters the engine protects'),
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
