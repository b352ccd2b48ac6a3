/**
 * One upload: options in, a state machine, events out. Platform-free; an entry point injects the
 * seams (`Platform`). See docs/client.md for the options, events and guarantees.
 */
import { Emitter } from './emitter.ts';
import { abortReason, ClientError, isClientError } from './errors.ts';
import { createPartsTransport } from './parts-transport.ts';
import { ChunkPlanner, type ChunkSizeOption } from './planner.ts';
import { ProgressTracker, type UploadProgress } from './progress.ts';
import { createRateLimiter, type RateLimiter } from './rate-limit.ts';
import { normalizeRetryPolicy, type RetryEvent, type RetryPolicy, type RetryPolicyOptions } from './retry.ts';
import { ConcurrencyController } from './scheduler.ts';
import {
  type Platform,
  type Protocol,
  type ResumeEntry,
  type ResumeStore,
  resumeKey,
  type UploadSource,
} from './seams.ts';
import { StateMachine, type UploadState } from './state.ts';
import { type TokenOption, TokenSource } from './token.ts';
import type { RemoteUpload, Transport, TransportContext, UploadResult } from './transport.ts';
import { createTusTransport } from './tus-transport.ts';

export interface UploadOptions {
  /** tus: the creation URL (`http://host/files/`); parts: the parts endpoint (`http://host/uploads`). */
  endpoint: string;
  /** Default `tus`. */
  protocol?: Protocol;
  /**
   * Parts protocol: send each part straight to the server's S3 bucket through presigned URLs and
   * report its ETag, instead of through the server (the server must use S3 storage, and the
   * bucket's CORS must expose `ETag` for browsers). Resume entries are ordinary parts entries:
   * either way can continue the other's upload. Default false.
   */
  presigned?: boolean;
  /** What to upload; the entry point decides what it accepts (Node: a path, bytes, a Readable). */
  source: unknown;
  /** File name sent to the server. Default: the source's (a path's base name). */
  name?: string;
  /** Media type sent to the server (the server sniffs the real one). */
  type?: string;
  /** Extra metadata: tus `Upload-Metadata`, parts `metadata`. */
  metadata?: Record<string, string>;
  /** Bytes per tus PATCH / parts part, `by-size` or `adaptive`. Default `adaptive`. */
  chunkSize?: ChunkSizeOption;
  /** Bounds of an adaptive chunk, in bytes. Default 1 MiB and 64 MiB. */
  minChunkSize?: number;
  maxChunkSize?: number;
  /** Transfer time an adaptive chunk aims at, in seconds. Default 4. */
  targetChunkSeconds?: number;
  /** Parts sent at once (parts protocol). Default 4. */
  parallel?: number;
  /** Adapt the number of parts in flight to throughput and errors. Default true. */
  adaptiveConcurrency?: boolean;
  retry?: RetryPolicyOptions;
  /** Cap on the send rate, bytes per second, or a limiter shared with other uploads. Default none. */
  limitRate?: number | RateLimiter;
  /** Where resume state is kept; `false` for none. Default: the platform's (Node: a JSON file; browsers: IndexedDB). */
  resumeStore?: ResumeStore | false;
  /**
   * A `Blob`/`File` source up to this many bytes is kept in the resume store (when it can hold one:
   * IndexedDB), so the upload continues after a reload or a browser restart without the user picking
   * the file again; larger ones are re-attached when picked again. 0 keeps none. Default: browsers
   * 64 MiB, Node 0.
   */
  keepFilesUpTo?: number;
  /**
   * Wait for the file's SHA-256 before creating the upload. Then a parts upload of a file the server
   * already holds is deduplicated whatever its size, and the upload is resumable from its first
   * byte. Default: yes up to 64 MiB (`HASH_FIRST_UP_TO`, hashed in moments); above, only when the
   * resume store holds an entry that could match, so a big upload starts sending at once (hashing
   * takes about a second per GiB) and is deduplicated only if it was hashed by then.
   */
  fingerprintFirst?: boolean;
  /** Extra request headers sent to the server (not to presigned bucket URLs). */
  headers?: Record<string, string>;
  /**
   * The upload token (docs/security.md), sent as `Authorization: Bearer <token>` on every request
   * to the server, never to a presigned bucket URL; it wins over an `authorization` in `headers`.
   * A function is asked when the upload first sends, and once more whenever the server answers
   * `401 ERR_TOKEN_EXPIRED`: that request is then sent again with the new token, without counting
   * as a failed attempt. Any other refusal of the token fails the upload with `ERR_UNAUTHORIZED`
   * (a refused file type with `ERR_TYPE_NOT_ALLOWED`).
   */
  token?: TokenOption;
  /** Aborting it stops the upload like `pause()` and rejects `start()`; the upload stays resumable. */
  signal?: AbortSignal;
  /** A request that moves no byte either way for this long is stopped and retried, in ms. Default 30000. */
  stallTimeoutMs?: number;
  /** Deadline of a request without a body (HEAD, POST, DELETE, GET), in ms. Default 30000. */
  requestTimeoutMs?: number;
  /**
   * A SHA-256 with every request body. tus: `Upload-Checksum: sha256` per chunk when the server
   * advertises it; default true. Parts: `Content-Digest` per part. By default, in browsers, only
   * the parts sent before the file's SHA-256 is ready carry one: the server verifies the rest
   * through the file's SHA-256 at `complete`, and when every part carried a digest `complete` does
   * not wait for the fingerprint. In Node the default is `false`, since node:crypto hashes the file
   * faster than it is sent. `false`: no digest until the server refuses the file's SHA-256 (then
   * the parts are compared with the server's digests and the differing ones sent again, with a
   * digest).
   */
  checksum?: boolean;
  /** tus: the first chunk goes with the creation request when the server advertises it. Default true. */
  creationWithUpload?: boolean;
  /** Least time between two `progress` events, in ms. Default 100. */
  progressIntervalMs?: number;
}

export interface StateEvent {
  state: UploadState;
  previous: UploadState;
  /** `paused` because the network went away (browsers); the upload resumes by itself when it is back. */
  offline: boolean;
}

export interface CreatedEvent {
  /** The new upload's URL on the server. */
  url: string;
}

export interface ResumedEvent {
  /** The upload URL found in the resume store. */
  url: string;
}

export interface RestartEvent {
  /** The upload URL the server no longer knows. */
  url: string;
  /** Why: the server's answer (404, 410 or 403). */
  error: ClientError;
}

export interface UploadEvents extends Record<string, unknown> {
  state: StateEvent;
  progress: UploadProgress;
  retry: RetryEvent;
  created: CreatedEvent;
  resumed: ResumedEvent;
  restart: RestartEvent;
}

/**
 * Sources up to this size are fingerprinted before their upload is created; bigger ones start
 * sending at once (hashing a GiB takes about a second).
 */
export const HASH_FIRST_UP_TO = 64 * 1024 * 1024;

const PAUSE = Symbol('pause');
const CANCEL = Symbol('cancel');

export interface Upload {
  readonly state: UploadState;
  readonly progress: UploadProgress;
  /** The upload's URL on the server, once created or found in the resume store. */
  readonly uploadUrl: string | undefined;
  /** Paused by the platform because the network is gone; it resumes by itself when it is back. */
  readonly pausedOffline: boolean;
  on<Name extends keyof UploadEvents>(name: Name, listener: (event: UploadEvents[Name]) => void): () => void;
  /** Starts (or, after a failure, retries) the upload; resolves when the server has the whole file. */
  start(): Promise<UploadResult>;
  /** Stops every request; what the server confirmed is kept. It stays paused, even when back online. */
  pause(): void;
  /** Continues a paused upload from what the server has (also one paused while offline). */
  resume(): void;
  /** Stops the upload, deletes it on the server and forgets it; `start()` rejects with `ERR_CANCELLED`. */
  cancel(): Promise<void>;
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

export function createUploadWith(platform: Platform, options: UploadOptions): Upload {
  return new UploadImpl(platform, options);
}

class UploadImpl implements Upload {
  readonly #platform: Platform;
  readonly #options: UploadOptions;
  readonly #policy: RetryPolicy;
  readonly #events = new Emitter<UploadEvents>();
  readonly #machine: StateMachine;
  readonly #transport: Transport;
  readonly #protocol: Protocol;
  readonly #endpoint: string;
  readonly #resumeStore: ResumeStore | undefined;
  readonly #rateLimiter: RateLimiter | undefined;
  readonly #token: TokenSource;
  /** Aborts everything, for good (cancel). */
  readonly #life = new AbortController();
  /** Stops the fingerprint: on cancel, and when the upload finished without needing it. */
  readonly #hashing = new AbortController();
  #source: UploadSource | undefined;
  /** The one opening of the source; a run started while an earlier one still opens it shares it. */
  #opening: Promise<UploadSource> | undefined;
  #progress: ProgressTracker | undefined;
  #planner: ChunkPlanner | undefined;
  #concurrency: ConcurrencyController | undefined;
  #remote: RemoteUpload | undefined;
  #sha256: Promise<string> | undefined;
  #sha256Value: string | undefined;
  /**
   * The run's creation (or lookup) of the upload. A tus creation request carrying bytes runs to its
   * answer even after a pause or cancel; `cancel()` and the next run wait for it, so the upload it
   * made is deleted or continued, not left behind.
   */
  #creating: Promise<void> | undefined;
  /** Saving the resume entry of an upload created before its fingerprint was ready. */
  #recording: Promise<void> | undefined;
  #run: AbortController | undefined;
  #result = deferred<UploadResult>();
  #started = false;
  #pausedOffline = false;
  #unsubscribeConnectivity: (() => void) | undefined;

  constructor(platform: Platform, options: UploadOptions) {
    this.#platform = platform;
    this.#options = options;
    this.#protocol = options.protocol ?? 'tus';
    if (this.#protocol !== 'tus' && this.#protocol !== 'parts') {
      throw new ClientError('ERR_INVALID_OPTIONS', { message: 'protocol must be "tus" or "parts"' });
    }
    if (options.presigned === true && this.#protocol !== 'parts') {
      throw new ClientError('ERR_INVALID_OPTIONS', { message: 'presigned needs protocol "parts"' });
    }
    try {
      this.#endpoint = new URL(options.endpoint).href;
    } catch (error) {
      throw new ClientError('ERR_INVALID_OPTIONS', {
        message: 'endpoint must be an absolute URL',
        cause: error,
      });
    }
    this.#policy = normalizeRetryPolicy(options.retry);
    this.#token = new TokenSource(options.token);
    this.#transport =
      this.#protocol === 'tus'
        ? createTusTransport()
        : createPartsTransport(options.presigned === true ? 's3-presigned' : 'parts');
    this.#resumeStore =
      options.resumeStore === false ? undefined : (options.resumeStore ?? platform.defaultResumeStore());
    this.#rateLimiter =
      typeof options.limitRate === 'number' ? createRateLimiter(options.limitRate) : options.limitRate;
    this.#machine = new StateMachine((state, previous) =>
      this.#events.emit('state', { state, previous, offline: state === 'paused' && this.#pausedOffline }),
    );
    options.signal?.addEventListener('abort', () => this.#abortByCaller(), { once: true });
  }

  get state(): UploadState {
    return this.#machine.state;
  }

  get progress(): UploadProgress {
    return (
      this.#progress?.snapshot() ?? {
        bytesConfirmed: 0,
        bytesInFlight: 0,
        totalBytes: undefined,
        fraction: undefined,
        bytesPerSecond: 0,
        etaSeconds: undefined,
      }
    );
  }

  get uploadUrl(): string | undefined {
    return this.#remote?.url;
  }

  get pausedOffline(): boolean {
    return this.#pausedOffline && this.#machine.state === 'paused';
  }

  on<Name extends keyof UploadEvents>(name: Name, listener: (event: UploadEvents[Name]) => void): () => void {
    return this.#events.on(name, listener);
  }

  start(): Promise<UploadResult> {
    const state = this.#machine.state;
    if (state === 'failed') {
      this.#result = deferred<UploadResult>();
      this.#launch();
    } else if (!this.#started) {
      this.#started = true;
      if (this.#options.signal?.aborted) this.#abortByCaller();
      else {
        this.#watchConnectivity();
        this.#launch();
        if (this.#platform.connectivity?.online() === false) this.#pause(true);
      }
    }
    return this.#result.promise;
  }

  pause(): void {
    this.#pause(false);
  }

  #pause(offline: boolean): void {
    const state = this.#machine.state;
    if (state === 'paused' && !offline) this.#pausedOffline = false;
    if (state !== 'creating' && state !== 'uploading' && state !== 'completing') return;
    this.#pausedOffline = offline;
    this.#machine.set('paused');
    this.#run?.abort(PAUSE);
    this.#progress?.flush();
    void this.#source?.suspend?.().catch(() => {});
  }

  resume(): void {
    if (this.#machine.state !== 'paused') return;
    this.#pausedOffline = false;
    this.#launch();
  }

  /** Offline: pause (as `pausedOffline`); back online: resume what the network paused, nothing else. */
  #watchConnectivity(): void {
    this.#unsubscribeConnectivity = this.#platform.connectivity?.subscribe((online) => {
      if (!online) this.#pause(true);
      else if (this.#pausedOffline && this.#machine.state === 'paused') this.resume();
    });
  }

  #stopWatching(): void {
    this.#unsubscribeConnectivity?.();
    this.#unsubscribeConnectivity = undefined;
  }

  async cancel(): Promise<void> {
    const state = this.#machine.state;
    if (state === 'done' || state === 'cancelled') return;
    this.#machine.set('cancelled');
    this.#stopWatching();
    this.#run?.abort(CANCEL);
    this.#life.abort(CANCEL);
    this.#hashing.abort(CANCEL);
    this.#progress?.dispose();
    this.#result.reject(new ClientError('ERR_CANCELLED'));
    try {
      await this.#creating?.catch(() => {});
      const remote = this.#remote;
      if (remote !== undefined && this.#source !== undefined) {
        // A fresh signal: the upload's own signals are aborted by now.
        await this.#transport.terminate(this.#context(new AbortController().signal), remote);
      }
      await this.#forget();
    } finally {
      await this.#source?.close();
    }
  }

  #abortByCaller(): void {
    const state = this.#machine.state;
    if (state === 'done' || state === 'cancelled' || state === 'failed') return;
    const reason = abortReason(this.#options.signal as AbortSignal);
    if (state !== 'idle' && state !== 'paused') this.#run?.abort(reason);
    if (state === 'idle') this.#machine.set('creating');
    this.#machine.set('failed');
    this.#progress?.flush();
    this.#result.reject(reason);
  }

  #launch(): void {
    this.#token.newRun();
    const run = new AbortController();
    this.#run = run;
    void this.#execute(run.signal).then(
      (result) => {
        if (this.#run !== run) return;
        this.#stopWatching();
        this.#machine.set('done');
        this.#progress?.flush();
        this.#progress?.dispose();
        this.#result.resolve(result);
        void this.#source?.close();
      },
      (error: unknown) => {
        if (this.#run !== run || run.signal.aborted) return; // paused, cancelled or aborted by the caller
        this.#machine.set('failed');
        this.#progress?.flush();
        this.#result.reject(error);
        void this.#source?.suspend?.().catch(() => {});
      },
    );
  }

  /** Moves to `phase` on behalf of the run owning `signal`; a run that was paused or replaced moves nothing. */
  #enter(phase: UploadState, signal: AbortSignal): void {
    if (this.#run?.signal !== signal || signal.aborted) throw abortReason(signal);
    this.#machine.set(phase);
  }

  async #execute(signal: AbortSignal): Promise<UploadResult> {
    if (this.#remote === undefined) this.#enter('creating', signal);
    const source = await this.#open();
    if (this.#protocol === 'parts' && source.size === undefined) throw new ClientError('ERR_SIZE_REQUIRED');
    // A creation still waiting for its answer from a paused run: its upload is the one to continue.
    await this.#creating?.catch(() => {});
    for (let restarts = 0; ; restarts++) {
      if (this.#remote === undefined) {
        this.#enter('creating', signal);
        this.#creating = this.#createOrFind(signal);
        await this.#creating;
      }
      const remote = this.#remote as RemoteUpload;
      if (remote.finished !== undefined) {
        await this.#forget();
        return remote.finished;
      }
      this.#enter('uploading', signal);
      try {
        const result = await this.#transport.send(this.#context(signal), remote);
        // Small uploads may finish before the fingerprint; the result always carries it. A parts
        // upload whose every part the server verified reports the server's SHA-256 instead.
        result.sha256 ??= (await this.#sha256) ?? source.streamedSha256;
        if (source.size !== undefined) this.#progress?.setTotal(source.size);
        // Finished before its fingerprint: nothing was recorded for resuming, and nothing needs it.
        if (this.#sha256Value === undefined) this.#hashing.abort(PAUSE);
        await this.#forget();
        return result;
      } catch (error) {
        // The server refused the file's type and deleted the upload: nothing is left to resume.
        if (isClientError(error) && error.code === 'ERR_TYPE_NOT_ALLOWED')
          await this.#forget().catch(() => {});
        // The server lost the upload (expired, deleted): start over once, if the source can.
        const canRestart = source.size !== undefined || this.#progress?.bytesConfirmed === 0;
        if (!isClientError(error) || error.code !== 'ERR_UPLOAD_GONE' || restarts >= 1 || !canRestart) {
          throw error;
        }
        await this.#forget();
        this.#remote = undefined;
        this.#events.emit('restart', { url: remote.url, error });
      }
    }
  }

  #open(): Promise<UploadSource> {
    this.#opening ??= this.#openOnce();
    const opening = this.#opening;
    // A source that could not be opened may open on the next `start()` (a file put back).
    opening.catch(() => {
      if (this.#opening === opening) this.#opening = undefined;
    });
    return opening;
  }

  async #openOnce(): Promise<UploadSource> {
    const source = await this.#platform.openSource(this.#options.source, this.#platform.hasher);
    this.#source = source;
    this.#planner = new ChunkPlanner(
      {
        chunkSize: this.#options.chunkSize ?? 'adaptive',
        ...(this.#options.minChunkSize !== undefined ? { minChunkSize: this.#options.minChunkSize } : {}),
        ...(this.#options.maxChunkSize !== undefined ? { maxChunkSize: this.#options.maxChunkSize } : {}),
        ...(this.#options.targetChunkSeconds !== undefined
          ? { targetSeconds: this.#options.targetChunkSeconds }
          : {}),
      },
      source.size,
    );
    this.#concurrency = new ConcurrencyController({
      max: this.#options.parallel ?? 4,
      adaptive: this.#options.adaptiveConcurrency ?? true,
    });
    this.#progress = new ProgressTracker({
      totalBytes: source.size,
      onProgress: (progress) => this.#events.emit('progress', progress),
      ...(this.#options.progressIntervalMs !== undefined
        ? { intervalMs: this.#options.progressIntervalMs }
        : {}),
    });
    if (source.size !== undefined) {
      this.#sha256 = this.#platform.hasher.hashSource(source, this.#hashing.signal).then((hex) => {
        this.#sha256Value = hex;
        return hex;
      });
      this.#sha256.catch(() => {});
    }
    return source;
  }

  /** The resume-store key, once the fingerprint is known; `undefined` when nothing is stored. */
  async #key(): Promise<string | undefined> {
    if (this.#resumeStore === undefined || this.#sha256 === undefined) return undefined;
    const source = this.#source as UploadSource;
    return resumeKey({
      protocol: this.#protocol,
      endpoint: this.#endpoint,
      sha256: await this.#sha256,
      size: source.size as number,
      name: this.#name() ?? null,
    });
  }

  #name(): string | undefined {
    return this.#options.name ?? this.#source?.name;
  }

  /**
   * Whether to wait for the fingerprint before creating: as `fingerprintFirst` says; by default,
   * with a resume store, always for a source up to `HASH_FIRST_UP_TO` (it is hashed in moments, and
   * then the upload is resumable from its first byte), and for a bigger one only when the store holds
   * an entry it could continue (same protocol, endpoint and size). Otherwise a big upload is created
   * at once, its bytes flow while it is hashed, and it is recorded for resuming when the fingerprint
   * is ready.
   */
  async #fingerprintFirst(): Promise<boolean> {
    if (this.#sha256 === undefined) return false;
    if (this.#resumeStore === undefined) return this.#options.fingerprintFirst === true;
    const size = this.#source?.size;
    const first = this.#options.fingerprintFirst;
    if (first !== undefined) return first || (await this.#hasCandidate(size));
    if (size !== undefined && size <= HASH_FIRST_UP_TO) return true;
    return this.#hasCandidate(size);
  }

  async #hasCandidate(size: number | undefined): Promise<boolean> {
    if (this.#resumeStore === undefined) return false;
    const entries = await this.#resumeStore.list();
    return entries.some(
      ({ entry }) =>
        entry.protocol === this.#protocol && entry.endpoint === this.#endpoint && entry.size === size,
    );
  }

  async #createOrFind(signal: AbortSignal): Promise<void> {
    // Resuming needs the fingerprint before anything is created (the worker hashes at disk speed),
    // but only when some stored entry could match.
    const first = await this.#fingerprintFirst();
    if (first) await this.#sha256;
    const key = first ? await this.#key() : undefined;
    if (signal.aborted) throw signal.reason;
    if (key !== undefined) {
      const entry = await this.#resumeStore?.get(key);
      if (entry !== undefined) {
        this.#remote = {
          url: entry.uploadUrl,
          ...(entry.partSize !== undefined ? { partSize: entry.partSize } : {}),
        };
        this.#events.emit('resumed', { url: entry.uploadUrl });
        // Picked again after a reload: keep it now, so the next reload needs no picking.
        if ((await this.#resumeStore?.keptFile?.(key)) === undefined) await this.#keepFile(key);
        return;
      }
    }
    const remote = await this.#transport.create(this.#context(signal));
    this.#remote = remote;
    if (remote.finished === undefined && !signal.aborted) this.#events.emit('created', { url: remote.url });
    if (remote.finished !== undefined || this.#resumeStore === undefined || this.#sha256 === undefined)
      return;
    if (key !== undefined) {
      await this.#record(key, remote);
      return;
    }
    // Recorded once the fingerprint is ready, while the bytes already flow; `#forget` waits for it.
    this.#recording = this.#key().then(
      (ready) => (ready === undefined || this.#remote !== remote ? undefined : this.#record(ready, remote)),
      () => undefined,
    );
  }

  /** Saves the resume entry of `remote` under `key` (and keeps a small file with it). */
  async #record(key: string, remote: RemoteUpload): Promise<void> {
    const source = this.#source as UploadSource;
    const entry: ResumeEntry = {
      protocol: this.#protocol,
      endpoint: this.#endpoint,
      uploadUrl: remote.url,
      size: source.size as number,
      name: this.#name() ?? null,
      sha256: this.#sha256Value as string,
      createdAt: new Date().toISOString(),
      ...(remote.partSize !== undefined ? { partSize: remote.partSize } : {}),
      ...(remote.expiresAt !== undefined ? { expiresAt: remote.expiresAt } : {}),
    };
    await this.#resumeStore?.set(key, entry);
    await this.#keepFile(key);
  }

  /** Keeps a small enough `Blob` source with its resume entry, where the store can. */
  async #keepFile(key: string): Promise<void> {
    const file = this.#source?.file;
    const limit = this.#options.keepFilesUpTo ?? this.#platform.keepFilesUpTo;
    if (file === undefined || file.size > limit || this.#resumeStore?.keepFile === undefined) return;
    // Best effort: a full quota leaves the upload resumable by picking the file again.
    await this.#resumeStore.keepFile(key, file).catch(() => {});
  }

  async #forget(): Promise<void> {
    await this.#recording?.catch(() => {});
    this.#recording = undefined;
    const key = this.#source?.size === undefined ? undefined : await this.#key().catch(() => undefined);
    if (key !== undefined) await this.#resumeStore?.remove(key);
  }

  #context(signal: AbortSignal): TransportContext {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(this.#options.headers ?? {}))
      headers[name.toLowerCase()] = value;
    return {
      endpoint: this.#endpoint,
      source: this.#source as UploadSource,
      http: this.#platform.http,
      hasher: this.#platform.hasher,
      sliceBlob: this.#platform.sliceBlob?.bind(this.#platform),
      policy: this.#policy,
      headers,
      token: this.#token,
      name: this.#name(),
      type: this.#options.type,
      metadata: { ...this.#options.metadata },
      progress: this.#progress as ProgressTracker,
      planner: this.#planner as ChunkPlanner,
      concurrency: this.#concurrency as ConcurrencyController,
      stallTimeoutMs: this.#options.stallTimeoutMs ?? 30_000,
      requestTimeoutMs: this.#options.requestTimeoutMs ?? 30_000,
      rateLimiter: this.#rateLimiter,
      checksum: this.#options.checksum ?? (this.#protocol === 'tus' ? true : this.#platform.partChecksum),
      creationWithUpload: this.#options.creationWithUpload ?? true,
      signal,
      onRetry: (event) => this.#events.emit('retry', event),
      setPhase: (phase) => {
        if (this.#run?.signal !== signal || signal.aborted) return;
        // The progress of this moment goes out first (events are throttled): no "completing 0%".
        if (phase === 'completing') this.#progress?.flush();
        this.#machine.set(phase);
      },
      sha256: async () => (this.#sha256 === undefined ? this.#source?.streamedSha256 : await this.#sha256),
      sha256IfReady: () => this.#sha256Value ?? this.#source?.streamedSha256,
      random: Math.random,
    };
  }
}
