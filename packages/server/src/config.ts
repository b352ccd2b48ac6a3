/**
 * The server's one configuration object. Every field states its unit and default; `normalizeConfig`
 * fills defaults and validates once, returning a frozen object. Libraries never read the environment:
 * the CLI maps flags, `FERRY_*` variables and a config file onto this shape.
 */
import { normalizeType, TYPE_PATTERN } from './content/type-patterns.ts';
import { WEBHOOK_EVENT_NAMES, type WebhookEventName } from './hooks/hook-types.ts';

export type Durability = 'fsync' | 'none';
export type DirectIo = 'auto' | 'on' | 'off';
export type StorageKind = 'fs' | 's3';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface ServerConfig {
  /** Directory for upload bytes (fs storage) and the SQLite database. Default `./ferry-data`. */
  dataDir: string;
  /** Where upload bytes go: `fs` (files under `dataDir`) or `s3` (a bucket). Default `fs`. */
  storage: StorageKind;
  /** S3 endpoint URL (S3-compatible servers); "" = AWS's endpoint for the region. Default "". */
  s3Endpoint: string;
  /** S3 bucket; required with `storage: 's3'`. Default "". */
  s3Bucket: string;
  /** S3 region; "" = the AWS SDK's (AWS_REGION…), else us-east-1. Default "". */
  s3Region: string;
  /** Path-style S3 URLs (endpoint/bucket/key), as most S3-compatible servers need. Default false. */
  s3ForcePathStyle: boolean;
  /** Prefix of every object key Ferry writes in the bucket. Default "". */
  s3KeyPrefix: string;
  /** Preferred S3 part size of tus uploads, in bytes (5 MiB..5 GiB; raised for files that need more than 10,000 parts). Default 8 MiB. */
  s3PartSize: number;
  /** Parts of one PATCH uploaded to S3 at the same time. Default 4. */
  s3Concurrency: number;
  /** Bytes of part buffers all S3 PATCHes together may hold; a PATCH past it waits, its body unread (at least s3PartSize; 0 = max(1 GiB, 2 × (s3Concurrency + 1) × s3PartSize)). Default 0. */
  s3MemoryBudgetBytes: number;
  /** Least time between two sweeps of orphaned S3 storage (multipart uploads and incomplete parts no upload owns), in seconds (at least 1). Default 900 (15 min). */
  s3OrphanSweepIntervalSeconds: number;
  /** Entries per ListMultipartUploads / ListObjectsV2 page of the orphan sweep (1..1000). Default 1000. */
  s3SweepPageSize: number;
  /** Presigned UploadPart URLs (`POST /uploads/:id/presign`, the Uppy signing routes) stay valid this many seconds (1..604800). Default 900 (15 min). */
  presignExpirySeconds: number;
  /** URL path of the tus endpoint; always ends with `/`. Default `/files/`. */
  basePath: string;
  /** URL path of the parts API; always ends with `/`. Default `/uploads/`. */
  partsPath: string;
  /** Largest upload accepted, in bytes (advertised as `Tus-Max-Size`). Default 5 TiB (S3's object limit). */
  maxSize: number;
  /** Unfinished uploads expire this many seconds after their last write. Default 86400 (24 h). 0 = never. */
  expirySeconds: number;
  /** How often the sweeper removes expired uploads, in seconds. Default 60. */
  sweepIntervalSeconds: number;
  /**
   * `fsync`: bytes are flushed to the disk before a write is acknowledged (survives power loss).
   * `none`: bytes are in the OS page cache when acknowledged (survives a process crash / kill -9, not
   * a power loss). Default `none` — see docs/storage.md for the measurement behind it.
   */
  durability: Durability;
  /**
   * Write upload bytes with O_DIRECT, bypassing the page cache: `auto` where the file system
   * supports it, `on` to refuse to start where it does not, `off` never. Default `auto` — see
   * docs/storage.md.
   */
  directIo: DirectIo;
  /** Compute the SHA-256 of every upload while it streams in (recorded on the upload). Default false. */
  hashUploads: boolean;
  /**
   * Content check: the MIME types (`image/png`) and patterns (`image/*`) a file's content, sniffed
   * from its magic bytes when it finishes, must match; a file that matches none is refused with
   * `ERR_TYPE_NOT_ALLOWED` and deleted. `[]` = every type is accepted (the type is still sniffed
   * and recorded). Default `[]`.
   */
  allowTypes: string[];
  /** Build `Location` from `Forwarded` / `X-Forwarded-Host` / `X-Forwarded-Proto`. Default false. */
  trustProxy: boolean;
  /** Origins allowed by CORS: `['*']` for any. Default `['*']`. */
  corsOrigins: string[];
  /**
   * Answer CORS requests with `Access-Control-Allow-Credentials: true` (browsers then send cookies
   * and HTTP auth). Needs an exact `corsOrigins` list: `*` is refused. Default false.
   */
  corsCredentials: boolean;
  /** How long a request waits for another request's lock on the same upload, in ms. Default 3000. */
  lockWaitMs: number;
  /** A lock holder that received no body bytes for this long yields to a waiting request, in ms. Default 500. */
  stallMs: number;
  /**
   * A PATCH body that sends nothing for this long is stopped (its bytes kept) with a 500, in ms; a
   * JSON body (parts API, Uppy's S3 routes) must have arrived whole this long after reading starts,
   * or it is answered 408 `ERR_REQUEST_TIMEOUT`. Default 60000.
   */
  bodyTimeoutMs: number;
  /**
   * A request body must bring at least this many bytes per second, measured over windows of
   * `bodyTimeoutMs` from its first byte, or it is stopped (its bytes kept) with a 500
   * `ERR_BODY_TIMEOUT` — a trickle resets the idle timer but not this. 0 = no minimum. Default 1024.
   */
  minBodyBytesPerSecond: number;
  /** A request whose headers have not all arrived after this long is answered 408 (slowloris), in ms; 0 = no limit. Default 60000. */
  headersTimeoutMs: number;
  /** Largest total size of request headers, in bytes. Default 16384. */
  maxHeaderBytes: number;
  /** Largest `Upload-Metadata` header, in bytes. Default 4096. */
  maxMetadataBytes: number;
  /**
   * Uploads a client may start per second, sustained (tus and parts creations, Uppy's multipart
   * creation); counted per token subject with auth on, else per client address. Beyond it: 429
   * `ERR_RATE_LIMITED` with `Retry-After`. 0 = no limit. Default 0 — see docs/security.md.
   */
  rateLimitPerSecond: number;
  /** Uploads a client may start at once before `rateLimitPerSecond` applies (at least 1). Default 20. */
  rateLimitBurst: number;
  /** On shutdown, how long in-flight requests may take to store what they received, in ms. Default 10000. */
  shutdownTimeoutMs: number;
  /** Log level for the JSON (pino) logs. Default `info`. */
  logLevel: LogLevel;
  /**
   * The HMAC secret of upload tokens (HS256, at least 32 bytes). Set: every API request must carry
   * a valid token, and uploads are isolated per token subject. "" = auth off. Default "".
   */
  authSecret: string;
  /**
   * URL that receives webhooks: a `POST` of JSON per event, signed with `hookSecret` (see
   * docs/hooks.md). "" = no webhooks. Default "".
   */
  hookUrl: string;
  /** The HMAC-SHA256 secret webhooks are signed with (at least 32 bytes); required with `hookUrl`. Default "". */
  hookSecret: string;
  /**
   * What the webhook receives: `pre-create` (a blocking call before an upload is created, which may
   * refuse it) and the events `created`, `finished`, `terminated`, `expired`, `rejected` (delivered
   * through the durable outbox). Default every event, without `pre-create`.
   */
  hookEvents: WebhookEventName[];
  /** How long one webhook request (and one in-process hook call) may take, in ms. Default 10000. */
  hookTimeoutMs: number;
  /** Longest wait between two delivery attempts of an event, in seconds (at least 1). Default 300. */
  hookRetryMaxDelaySeconds: number;
}

export const DEFAULT_CONFIG: Readonly<ServerConfig> = Object.freeze({
  dataDir: './ferry-data',
  storage: 'fs',
  s3Endpoint: '',
  s3Bucket: '',
  s3Region: '',
  s3ForcePathStyle: false,
  s3KeyPrefix: '',
  s3PartSize: 8 * 1024 * 1024,
  s3Concurrency: 4,
  s3MemoryBudgetBytes: 0,
  s3OrphanSweepIntervalSeconds: 900,
  s3SweepPageSize: 1000,
  presignExpirySeconds: 900,
  basePath: '/files/',
  partsPath: '/uploads/',
  maxSize: 5 * 1024 ** 4,
  expirySeconds: 86_400,
  sweepIntervalSeconds: 60,
  durability: 'none',
  directIo: 'auto',
  hashUploads: false,
  allowTypes: [],
  trustProxy: false,
  corsOrigins: ['*'],
  corsCredentials: false,
  lockWaitMs: 3000,
  stallMs: 500,
  bodyTimeoutMs: 60_000,
  minBodyBytesPerSecond: 1024,
  headersTimeoutMs: 60_000,
  maxHeaderBytes: 16_384,
  maxMetadataBytes: 4096,
  rateLimitPerSecond: 0,
  rateLimitBurst: 20,
  shutdownTimeoutMs: 10_000,
  logLevel: 'info',
  authSecret: '',
  hookUrl: '',
  hookSecret: '',
  hookEvents: ['created', 'finished', 'terminated', 'expired', 'rejected'] as WebhookEventName[],
  hookTimeoutMs: 10_000,
  hookRetryMaxDelaySeconds: 300,
});

/** Describes every field, for `--help` and docs. Kept next to the defaults so the two stay in step. */
export const CONFIG_FIELDS: ReadonlyArray<{
  key: keyof ServerConfig;
  type: 'string' | 'integer' | 'boolean' | 'list' | 'enum';
  values?: readonly string[];
  description: string;
  /** The empty string is allowed (and is the default): the field is unset. */
  optional?: boolean;
  /** How help and docs show the default, when the value itself says little. */
  defaultLabel?: string;
}> = [
  {
    key: 'dataDir',
    type: 'string',
    description: 'directory for upload bytes (fs storage) and the SQLite database',
  },
  { key: 'basePath', type: 'string', description: 'URL path of the tus endpoint' },
  { key: 'partsPath', type: 'string', description: 'URL path of the parts API' },
  { key: 'maxSize', type: 'integer', description: 'largest upload accepted, in bytes (Tus-Max-Size)' },
  {
    key: 'expirySeconds',
    type: 'integer',
    description: 'unfinished uploads expire after this many idle seconds (0 = never)',
  },
  { key: 'sweepIntervalSeconds', type: 'integer', description: 'seconds between sweeps of expired uploads' },
  {
    key: 'durability',
    type: 'enum',
    values: ['none', 'fsync'],
    description: 'fsync: flush to disk before acknowledging; none: acknowledge once in the page cache',
  },
  {
    key: 'directIo',
    type: 'enum',
    values: ['auto', 'on', 'off'],
    description:
      'write upload bytes with O_DIRECT (bypassing the page cache) where the file system supports it',
  },
  {
    key: 'storage',
    type: 'enum',
    values: ['fs', 's3'],
    description: 'where upload bytes go: fs (files under the data directory) or s3 (a bucket)',
  },
  {
    key: 's3Endpoint',
    type: 'string',
    optional: true,
    defaultLabel: "AWS's for the region",
    description: 'S3 endpoint URL, for S3-compatible servers (Ceph RGW, MinIO…)',
  },
  {
    key: 's3Bucket',
    type: 'string',
    optional: true,
    defaultLabel: 'none',
    description: 'S3 bucket (required with --storage s3); credentials come from the AWS environment',
  },
  {
    key: 's3Region',
    type: 'string',
    optional: true,
    defaultLabel: 'AWS_REGION, else us-east-1',
    description: 'S3 region',
  },
  {
    key: 's3ForcePathStyle',
    type: 'boolean',
    description: 'path-style S3 URLs (endpoint/bucket/key), as most S3-compatible servers need',
  },
  {
    key: 's3KeyPrefix',
    type: 'string',
    optional: true,
    defaultLabel: 'none',
    description: 'prefix of every object key Ferry writes in the bucket',
  },
  {
    key: 's3PartSize',
    type: 'integer',
    description:
      'preferred S3 part size of tus uploads (5MiB..5GiB; raised when a file needs more than 10,000 parts)',
  },
  {
    key: 's3Concurrency',
    type: 'integer',
    description: 'parts of one PATCH uploaded to S3 at the same time',
  },
  {
    key: 's3MemoryBudgetBytes',
    type: 'integer',
    defaultLabel: '0 (automatic)',
    description:
      'bytes of part buffers all S3 PATCHes together may hold, at least s3PartSize; past it a PATCH waits, its body unread (0 = max(1GiB, 2 × (s3Concurrency + 1) × s3PartSize))',
  },
  {
    key: 's3OrphanSweepIntervalSeconds',
    type: 'integer',
    description:
      'least seconds between two sweeps of orphaned S3 multipart uploads and incomplete parts (each lists the key prefix)',
  },
  {
    key: 's3SweepPageSize',
    type: 'integer',
    description: 'entries per S3 listing page of the orphan sweep (1..1000)',
  },
  {
    key: 'presignExpirySeconds',
    type: 'integer',
    description: 'seconds a presigned S3 part URL stays valid (1..604800; S3 storage only)',
  },
  {
    key: 'hashUploads',
    type: 'boolean',
    description: 'compute the SHA-256 of every upload as it streams in',
  },
  {
    key: 'allowTypes',
    type: 'list',
    defaultLabel: 'none (every type)',
    description:
      'comma-separated MIME types or patterns (image/*,application/pdf) the content of a finished upload, sniffed from its magic bytes, must match; others are refused and deleted',
  },
  {
    key: 'trustProxy',
    type: 'boolean',
    description: 'build Location from Forwarded / X-Forwarded-* headers',
  },
  { key: 'corsOrigins', type: 'list', description: 'comma-separated origins allowed by CORS (* for any)' },
  {
    key: 'corsCredentials',
    type: 'boolean',
    description: 'allow credentialed CORS requests (cookies, HTTP auth); needs exact corsOrigins, not *',
  },
  {
    key: 'lockWaitMs',
    type: 'integer',
    description: 'ms a request waits for the lock held by another request',
  },
  { key: 'stallMs', type: 'integer', description: 'ms without body bytes after which a lock holder yields' },
  {
    key: 'bodyTimeoutMs',
    type: 'integer',
    description:
      'ms without body bytes after which a PATCH is stopped (500); also the time a whole JSON body may take to arrive (408)',
  },
  {
    key: 'minBodyBytesPerSecond',
    type: 'integer',
    description:
      'least bytes per second a request body must bring, over windows of bodyTimeoutMs, or it is stopped (0 = no minimum)',
  },
  {
    key: 'headersTimeoutMs',
    type: 'integer',
    description: 'ms a request may take to send its headers before it is answered 408 (0 = no limit)',
  },
  { key: 'maxHeaderBytes', type: 'integer', description: 'largest total size of request headers, in bytes' },
  { key: 'maxMetadataBytes', type: 'integer', description: 'largest Upload-Metadata header, in bytes' },
  {
    key: 'rateLimitPerSecond',
    type: 'integer',
    description:
      'uploads a client (token subject, else address) may start per second; beyond: 429 with Retry-After (0 = no limit)',
  },
  {
    key: 'rateLimitBurst',
    type: 'integer',
    description: 'uploads a client may start at once before rateLimitPerSecond applies',
  },
  {
    key: 'shutdownTimeoutMs',
    type: 'integer',
    description: 'ms in-flight requests get to finish on shutdown',
  },
  {
    key: 'logLevel',
    type: 'enum',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    description: 'log level of the JSON logs',
  },
  {
    key: 'authSecret',
    type: 'string',
    optional: true,
    defaultLabel: 'none (auth off)',
    description:
      'HMAC secret of upload tokens (32+ bytes): every request needs a token, uploads are isolated per owner',
  },
  {
    key: 'hookUrl',
    type: 'string',
    optional: true,
    defaultLabel: 'none',
    description: 'URL that receives signed webhooks (JSON POST per event; see docs/hooks.md)',
  },
  {
    key: 'hookSecret',
    type: 'string',
    optional: true,
    defaultLabel: 'none',
    description: 'HMAC-SHA256 secret webhooks are signed with (32+ bytes; required with --hook-url)',
  },
  {
    key: 'hookEvents',
    type: 'list',
    description: `what the webhook receives: ${WEBHOOK_EVENT_NAMES.join(', ')} (pre-create blocks creation and may refuse it)`,
  },
  {
    key: 'hookTimeoutMs',
    type: 'integer',
    description: 'ms one webhook request (or in-process hook call) may take',
  },
  {
    key: 'hookRetryMaxDelaySeconds',
    type: 'integer',
    description: 'longest wait between two delivery attempts of a webhook event, in seconds',
  },
];

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Fills defaults, checks every field and freezes the result. Throws `ConfigError` naming the field. */
export function normalizeConfig(input: Partial<ServerConfig> = {}): Readonly<ServerConfig> {
  const config: ServerConfig = {
    ...DEFAULT_CONFIG,
    corsOrigins: [...DEFAULT_CONFIG.corsOrigins],
    allowTypes: [...DEFAULT_CONFIG.allowTypes],
    hookEvents: [...DEFAULT_CONFIG.hookEvents],
  };
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_CONFIG)) throw new ConfigError(`unknown option "${key}"`);
    (config as unknown as Record<string, unknown>)[key] = value;
  }
  for (const field of CONFIG_FIELDS) {
    const value = config[field.key];
    const fail = (what: string) => {
      throw new ConfigError(`option "${field.key}" ${what} (got ${JSON.stringify(value)})`);
    };
    switch (field.type) {
      case 'integer':
        if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
          fail('must be a non-negative integer');
        break;
      case 'boolean':
        if (typeof value !== 'boolean') fail('must be true or false');
        break;
      case 'string':
        if (typeof value !== 'string' || (value === '' && !field.optional))
          fail('must be a non-empty string');
        break;
      case 'list':
        if (!Array.isArray(value) || value.some((item) => typeof item !== 'string'))
          fail('must be a list of strings');
        break;
      case 'enum':
        if (!field.values?.includes(value as string)) fail(`must be one of ${field.values?.join(', ')}`);
        break;
    }
  }
  if (!config.basePath.startsWith('/')) config.basePath = `/${config.basePath}`;
  if (!config.basePath.endsWith('/')) config.basePath = `${config.basePath}/`;
  if (!config.partsPath.startsWith('/')) config.partsPath = `/${config.partsPath}`;
  if (!config.partsPath.endsWith('/')) config.partsPath = `${config.partsPath}/`;
  if (config.partsPath.startsWith(config.basePath) || config.basePath.startsWith(config.partsPath)) {
    throw new ConfigError('options "basePath" and "partsPath" must not contain each other');
  }
  config.allowTypes = [...new Set(config.allowTypes.map(normalizeType))];
  const badType = config.allowTypes.find((type) => !TYPE_PATTERN.test(type));
  if (badType !== undefined) {
    throw new ConfigError(
      `option "allowTypes" takes MIME types or patterns like image/png, image/* or */* (got ${JSON.stringify(badType)})`,
    );
  }
  if (config.maxSize === 0) throw new ConfigError('option "maxSize" must be at least 1');
  if (config.s3OrphanSweepIntervalSeconds < 1) {
    throw new ConfigError('option "s3OrphanSweepIntervalSeconds" must be at least 1');
  }
  // S3 lists at most 1000 entries per page.
  if (config.s3SweepPageSize < 1 || config.s3SweepPageSize > 1000) {
    throw new ConfigError('option "s3SweepPageSize" must be from 1 to 1000');
  }
  // SigV4 presigned URLs are valid for at most 7 days.
  if (config.presignExpirySeconds < 1 || config.presignExpirySeconds > 604_800) {
    throw new ConfigError('option "presignExpirySeconds" must be from 1 to 604800');
  }
  config.hookEvents = [
    ...new Set(config.hookEvents.map((name) => name.trim().toLowerCase())),
  ] as WebhookEventName[];
  const badEvent = config.hookEvents.find(
    (name) => !(WEBHOOK_EVENT_NAMES as readonly string[]).includes(name),
  );
  if (badEvent !== undefined) {
    throw new ConfigError(
      `option "hookEvents" takes ${WEBHOOK_EVENT_NAMES.join(', ')} (got ${JSON.stringify(badEvent)})`,
    );
  }
  if (config.hookUrl !== '') {
    let url: URL | undefined;
    try {
      url = new URL(config.hookUrl);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new ConfigError(
        `option "hookUrl" must be an http:// or https:// URL (got ${JSON.stringify(config.hookUrl)})`,
      );
    }
    if (config.hookSecret === '') {
      throw new ConfigError(
        'option "hookUrl" needs "hookSecret" (FERRY_HOOK_SECRET): webhooks are always signed, so the receiver can tell them from forgeries',
      );
    }
  }
  if (config.hookSecret !== '' && Buffer.byteLength(config.hookSecret) < 32) {
    throw new ConfigError(
      'option "hookSecret" must be at least 32 bytes (for example: openssl rand -base64 32)',
    );
  }
  if (config.hookTimeoutMs < 1) throw new ConfigError('option "hookTimeoutMs" must be at least 1');
  if (config.hookRetryMaxDelaySeconds < 1) {
    throw new ConfigError('option "hookRetryMaxDelaySeconds" must be at least 1');
  }
  if (config.rateLimitBurst < 1) throw new ConfigError('option "rateLimitBurst" must be at least 1');
  if (config.corsCredentials && config.corsOrigins.includes('*')) {
    throw new ConfigError(
      'option "corsCredentials" needs an exact list of origins in "corsOrigins" (for example https://app.example.com), not "*": any site could then make requests with your users\' credentials',
    );
  }
  return Object.freeze(config);
}
