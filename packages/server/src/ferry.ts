/**
 * createFerry: wires the embedded defaults (fs bytes — or S3 with `storage: 's3'` — SQLite records,
 * in-process locks) or the stores an app passes, and exposes the node:http handler, the fetch adapter, a `listen` helper
 * and a graceful `close`.
 */
import { mkdir } from 'node:fs/promises';
import { createServer, type Server, STATUS_CODES } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { ERRORS } from '@ferry/protocol';
import pino, { type Logger } from 'pino';
import { createAuthorizer } from './auth/authorizer.ts';
import { checkAuthSecret, mintUploadToken, type UploadTokenOptions } from './auth/upload-token.ts';
import { ConfigError, normalizeConfig, type ServerConfig } from './config.ts';
import type { FerryHooks } from './hooks/hook-types.ts';
import { OutboxDispatcher } from './hooks/outbox-dispatcher.ts';
import { UploadHooks } from './hooks/upload-hooks.ts';
import { createFetchHandler, type FetchHandler } from './http/fetch-handler.ts';
import { createNodeHandler, type NodeHandler } from './http/node-handler.ts';
import { createRouter } from './http/router.ts';
import type { Locker } from './meta/locker.ts';
import { createMemoryLocker } from './meta/memory-locker.ts';
import type { MetaStore } from './meta/meta-store.ts';
import { createSqliteMetaStore } from './meta/sqlite/sqlite-meta-store.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import { createFeedProtocol } from './protocols/feed/feed-protocol.ts';
import { createPartsProtocol } from './protocols/parts/parts-protocol.ts';
import { createUppyS3Routes } from './protocols/s3-signing/uppy-routes.ts';
import { createTusProtocol } from './protocols/tus/tus-protocol.ts';
import { PartsService } from './service/parts-service.ts';
import { PresignedParts } from './service/presigned-parts.ts';
import { createUploadEvents, type UploadEvents } from './service/upload-events.ts';
import { UploadService } from './service/upload-service.ts';
import type { DataStore } from './stores/data-store.ts';
import { createFsDataStore } from './stores/fs/fs-data-store.ts';
import { createS3DataStore } from './stores/s3/s3-data-store.ts';
import { MAX_PART_SIZE, MIN_PART_SIZE } from './stores/s3/s3-part-size.ts';
import { createStaticSite } from './web/static-site.ts';

export interface FerryOptions extends Partial<ServerConfig> {
  /** Where bytes go. Default: the fs store in `<dataDir>/`, or the S3 store with `storage: 's3'`. */
  dataStore?: DataStore;
  /** Where upload records go. Default: SQLite at `<dataDir>/ferry.db`. */
  metaStore?: MetaStore;
  /** One writer per upload. Default: in-process locks (one server process). */
  locker?: Locker;
  /** A pino logger. Default: JSON lines on stderr at `logLevel`. */
  logger?: Logger;
  /** The clock in epoch ms (tests). */
  now?: () => number;
  /**
   * A directory of built web-app files (`index.html`, `assets/`) to serve at `/`, on every path the
   * API does not own. Default: none (those paths answer 404). When the directory holds no
   * `index.html`, one warning is logged and HTML requests get a page saying how to build the app.
   * A handler mounted with a `next` (Express) passes those paths on instead.
   */
  webDir?: string;
  /**
   * In-process hooks: `beforeCreate`, `beforeFinish`, `onProgress` and the `after*` notifications
   * (delivered through the durable outbox). See docs/hooks.md.
   */
  hooks?: FerryHooks;
}

export interface Ferry {
  readonly config: Readonly<ServerConfig>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly service: UploadService;
  /** The parts API's service (create, putPart, complete, terminate). */
  readonly parts: PartsService;
  /** Parts sent straight to S3: presigned URLs, ETag reports, verified completion (S3 storage). */
  readonly presigned: PresignedParts;
  /** What happens to uploads in this process, per upload or per namespace (the feed's source). */
  readonly events: UploadEvents;
  /** Delivers the hook outbox (the `after*` hooks and the webhook); `idle()` waits until nothing is due. */
  readonly outbox: OutboxDispatcher;
  /** node:http handler; with Express `next`, paths that are not Ferry's are passed on. */
  readonly handler: NodeHandler;
  /** Fetch-style handler for Next.js route handlers, Hono and the like. */
  readonly fetch: FetchHandler;
  /** Starts an HTTP server on `host:port` (0 = any free port). */
  listen(options: { host: string; port: number }): Promise<{ url: string; port: number; server: Server }>;
  /** Removes expired uploads now (the server also does it every `sweepIntervalSeconds`). */
  sweep(): Promise<number>;
  /** True when the server has an `authSecret`: every API request needs an upload token. */
  readonly authRequired: boolean;
  /**
   * Mints an upload token signed with this server's `authSecret` (see `mintUploadToken`); throws
   * `ConfigError` when the server has none.
   */
  mintToken(claims: Omit<UploadTokenOptions, 'secret' | 'now'>): Promise<string>;
  /**
   * Graceful shutdown: stop accepting, ask in-flight bodies to stop and store what they received,
   * wait for their responses (at most `shutdownTimeoutMs`), then close the stores.
   */
  close(): Promise<void>;
}

export async function createFerry(options: FerryOptions = {}): Promise<Ferry> {
  const {
    dataStore,
    metaStore,
    locker,
    logger: givenLogger,
    now,
    webDir,
    hooks: hookFunctions,
    ...settings
  } = options;
  const config = normalizeConfig(settings);
  // Before any store is opened: a short secret is a configuration error, not a half-started server.
  if (config.authSecret !== '') checkAuthSecret(config.authSecret);
  const logger =
    givenLogger ??
    pino(
      { level: config.logLevel },
      // Buffered: one write per 4 KiB of log lines instead of one per line (flushed on close).
      pino.destination({ fd: 2, sync: false, minLength: 4096 }),
    );
  if (dataStore === undefined || metaStore === undefined) await mkdir(config.dataDir, { recursive: true });
  const data = dataStore ?? (await createDataStore(config));
  const meta = metaStore ?? (await createSqliteMetaStore({ path: join(config.dataDir, 'ferry.db') }));
  const locks = locker ?? createMemoryLocker();
  const clock = now ?? Date.now;
  const metrics = createMetrics({
    activeUploads: async () => (await meta.countByState()).uploading,
    hookBacklog: async () => {
      const { pending, oldestCreatedAt } = await meta.outboxBacklog();
      return {
        pending,
        oldestAgeSeconds: oldestCreatedAt === null ? 0 : Math.max(0, (clock() - oldestCreatedAt) / 1000),
      };
    },
  });
  const events = createUploadEvents();
  const hooks = new UploadHooks({
    config,
    hooks: hookFunctions,
    dataStore: data,
    meta,
    events,
    logger,
    now: clock,
  });
  const outbox = new OutboxDispatcher({ config, meta, hooks, logger, metrics, now: clock });
  const service = new UploadService({
    config,
    dataStore: data,
    metaStore: meta,
    locker: locks,
    logger,
    metrics,
    events,
    hooks,
    orphanSweepIntervalMs: config.s3OrphanSweepIntervalSeconds * 1000,
    ...(now ? { now } : {}),
  });
  const partsService = new PartsService({
    config,
    dataStore: data,
    capabilities: service.capabilities,
    metaStore: meta,
    locker: locks,
    logger,
    metrics,
    events,
    hooks,
    ...(now ? { now } : {}),
  });
  const tus = createTusProtocol(service, logger);
  /** Aborted at shutdown: event streams end so in-flight requests can drain. */
  const stopping = new AbortController();
  const presigned = new PresignedParts({
    config,
    dataStore: data,
    metaStore: meta,
    locker: locks,
    logger,
    metrics,
    events,
    hooks,
    parts: partsService,
    ...(now ? { now } : {}),
  });
  const parts = createPartsProtocol(partsService, events, config, stopping.signal, presigned);
  const uppy = createUppyS3Routes(presigned, partsService, config);
  const feed = createFeedProtocol({
    config,
    metaStore: meta,
    events,
    closing: stopping.signal,
    ...(now ? { now } : {}),
  });
  const site = webDir === undefined ? undefined : createStaticSite({ directory: webDir });
  if (site !== undefined && !(await site.isBuilt())) {
    logger.warn(
      { webDir: site.directory },
      'the web app is not built (no index.html): run `npm run build -w apps/web`; until then / shows how',
    );
  }
  let ready = true;
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const tracker = {
    begin() {
      inFlight += 1;
    },
    end() {
      inFlight -= 1;
      if (inFlight === 0) drained?.();
    },
  };
  const authRequired = config.authSecret !== '';
  const router = createRouter({
    config,
    service,
    tus,
    parts,
    ...(presigned.available ? { uppy } : {}),
    feed,
    ...(site ? { site } : {}),
    metrics,
    logger,
    isReady: () => ready,
    ...(authRequired
      ? {
          authorizer: createAuthorizer({ secret: config.authSecret, ...(now ? { now } : {}) }),
          ownerOf: async (id: string) => (await meta.get(id))?.namespace,
        }
      : {}),
  });
  const handler = createNodeHandler({ router, metrics, logger, trustProxy: config.trustProxy, tracker });
  const fetch = createFetchHandler({ router, metrics, logger, trustProxy: config.trustProxy, tracker });

  const sweep = async () => {
    try {
      return await service.sweep();
    } catch (error) {
      logger.error({ err: error }, 'expiry sweep failed');
      return 0;
    }
  };
  const sweeper =
    config.sweepIntervalSeconds > 0
      ? setInterval(() => void sweep(), config.sweepIntervalSeconds * 1000)
      : undefined;
  sweeper?.unref();
  // Delivers what earlier runs left in the outbox too; without any hook it never starts.
  if (hooks.delivers || config.hookUrl !== '') outbox.start();

  const servers = new Set<Server>();
  let closing: Promise<void> | undefined;

  async function shutdown(): Promise<void> {
    ready = false;
    clearInterval(sweeper);
    for (const server of servers) {
      server.close();
      server.closeIdleConnections();
    }
    service.shutdown();
    partsService.shutdown();
    stopping.abort();
    if (inFlight > 0) {
      await new Promise<void>((resolve) => {
        drained = resolve;
        setTimeout(resolve, config.shutdownTimeoutMs).unref();
      });
    }
    for (const server of servers) server.closeAllConnections();
    await outbox.stop();
    await locks.close();
    await meta.close();
    // Only a store Ferry made is closed: an app's own store is the app's to close.
    if (dataStore === undefined) await (data as { close?: () => Promise<void> }).close?.();
    logger.info('ferry stopped');
    logger.flush();
  }

  return {
    config,
    logger,
    metrics,
    service,
    parts: partsService,
    presigned,
    events,
    outbox,
    handler,
    fetch,
    sweep,
    authRequired,
    async mintToken(claims) {
      if (!authRequired) throw new ConfigError('this server has no authSecret to sign upload tokens with');
      return mintUploadToken({ ...claims, secret: config.authSecret, ...(now ? { now } : {}) });
    },
    async listen({ host, port }) {
      const server = createServer({
        // Uploads are long: no total-request deadline (Node's default is 5 minutes); idle bodies are
        // stopped by `bodyTimeoutMs` instead, and slow headers by `headersTimeout`.
        requestTimeout: 0,
        headersTimeout: config.headersTimeoutMs,
        // Node checks the headers deadline on this interval (30 s by default).
        connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(config.headersTimeoutMs / 4))),
        keepAliveTimeout: 65_000,
        maxHeaderSize: config.maxHeaderBytes,
      });
      server.on('request', handler);
      server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) =>
        answerClientError(error, socket),
      );
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      servers.add(server);
      const address = server.address() as AddressInfo;
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return { url: `http://${shownHost}:${address.port}`, port: address.port, server };
    },
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}

/** The store `config.storage` names; S3 credentials come from the AWS SDK's default chain. */
async function createDataStore(config: Readonly<ServerConfig>): Promise<DataStore> {
  if (config.storage === 's3') {
    if (config.s3Bucket === '') {
      throw new ConfigError('storage "s3" needs a bucket: set --s3-bucket, FERRY_S3_BUCKET or "s3Bucket"');
    }
    if (config.s3PartSize < MIN_PART_SIZE || config.s3PartSize > MAX_PART_SIZE) {
      throw new ConfigError(`option "s3PartSize" must be from 5 MiB to 5 GiB (got ${config.s3PartSize})`);
    }
    if (config.s3Concurrency < 1) throw new ConfigError('option "s3Concurrency" must be at least 1');
    if (config.s3MemoryBudgetBytes !== 0 && config.s3MemoryBudgetBytes < config.s3PartSize) {
      throw new ConfigError(
        `option "s3MemoryBudgetBytes" must be at least s3PartSize (${config.s3PartSize}), or 0 for the default`,
      );
    }
    return createS3DataStore({
      bucket: config.s3Bucket,
      ...(config.s3Endpoint ? { endpoint: config.s3Endpoint } : {}),
      ...(config.s3Region ? { region: config.s3Region } : {}),
      forcePathStyle: config.s3ForcePathStyle,
      keyPrefix: config.s3KeyPrefix,
      partSize: config.s3PartSize,
      concurrency: config.s3Concurrency,
      ...(config.s3MemoryBudgetBytes > 0 ? { memoryBudgetBytes: config.s3MemoryBudgetBytes } : {}),
      sweepPageSize: config.s3SweepPageSize,
    });
  }
  return createFsDataStore({
    directory: config.dataDir,
    durability: config.durability,
    directIo: config.directIo,
  });
}

/** Malformed or oversized requests never reach the handler: answer them in the same JSON shape. */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable || (error as { code?: string }).code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const code =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? 'ERR_HEADERS_TOO_LARGE'
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'ERR_REQUEST_TIMEOUT'
        : 'ERR_BAD_REQUEST';
  const status = ERRORS[code].status;
  const body = JSON.stringify({ error: { code, message: ERRORS[code].message } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
