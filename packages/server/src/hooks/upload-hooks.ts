/**
 * UploadHooks: the one place the services ask about hooks. It runs the blocking hooks
 * (`beforeCreate` and the `pre-create` webhook, `beforeFinish`), builds the outbox entries a write
 * queues for the `after*` hooks and the webhook (none when nothing listens, so hooks cost nothing
 * when unused), and feeds `onProgress` from the upload events, throttled.
 */
import { randomUUID } from 'node:crypto';
import { isValidUploadId, UploadError } from '@ferry/protocol';
import type { Logger } from 'pino';
import type { ServerConfig } from '../config.ts';
import { declaredTypeOf } from '../content/content-check.ts';
import type { MetaStore, OutboxEntry, UploadRecord } from '../meta/meta-store.ts';
import { declaredNameOf, isoTime } from '../protocols/files/file-info.ts';
import type { UploadEventRecord, UploadEvents } from '../service/upload-events.ts';
import type { DataStore } from '../stores/data-store.ts';
import {
  type CreateDecision,
  type CreateRequest,
  type FerryHooks,
  HOOK_EVENT_TYPES,
  type HookEvent,
  type HookEventType,
  HookRejection,
  type StorageLocation,
  type UploadInfo,
} from './hook-types.ts';
import { sendWebhook } from './webhook.ts';

/** The outbox's sinks: the in-process `after*` functions, and the webhook URL. */
export const APP_SINK = 'app';
export const WEBHOOK_SINK = 'webhook';

/** The in-process function that receives each outbox event type. */
export const AFTER_HOOKS = {
  created: 'afterCreate',
  finished: 'afterFinish',
  terminated: 'afterTerminate',
  expired: 'afterExpire',
  rejected: 'afterReject',
} as const satisfies Record<HookEventType, keyof FerryHooks>;

/** What an outbox event may be built from: a record, or the fields of one about to be written. */
export type RecordView = Pick<
  UploadRecord,
  'id' | 'namespace' | 'protocol' | 'size' | 'offset' | 'metadata'
> &
  Partial<
    Pick<
      UploadRecord,
      'concat' | 'state' | 'storageKey' | 'sha256' | 'sniffedType' | 'createdAt' | 'finishedAt' | 'expiresAt'
    >
  >;

export interface UploadHooksOptions {
  config: Readonly<ServerConfig>;
  hooks?: FerryHooks | undefined;
  dataStore: DataStore;
  /** Where a chosen id is checked for a clash. */
  meta: MetaStore;
  events: UploadEvents;
  logger: Logger;
  now: () => number;
}

export class UploadHooks {
  readonly #config: Readonly<ServerConfig>;
  readonly #hooks: FerryHooks;
  readonly #store: DataStore;
  readonly #meta: MetaStore;
  readonly #logger: Logger;
  readonly #now: () => number;
  /** Event types each sink wants. */
  readonly #app: ReadonlySet<HookEventType>;
  readonly #webhook: ReadonlySet<HookEventType>;
  readonly #preCreate: boolean;
  #wake: (() => void) | undefined;

  constructor(options: UploadHooksOptions) {
    this.#config = options.config;
    this.#hooks = options.hooks ?? {};
    this.#store = options.dataStore;
    this.#meta = options.meta;
    this.#logger = options.logger;
    this.#now = options.now;
    this.#app = new Set(
      HOOK_EVENT_TYPES.filter((type) => typeof this.#hooks[AFTER_HOOKS[type]] === 'function'),
    );
    const webhookOn = options.config.hookUrl !== '';
    this.#webhook = new Set(
      webhookOn ? HOOK_EVENT_TYPES.filter((type) => options.config.hookEvents.includes(type)) : [],
    );
    this.#preCreate = webhookOn && options.config.hookEvents.includes('pre-create');
    if (this.#hooks.onProgress !== undefined) this.#listenToProgress(options.events, this.#hooks.onProgress);
  }

  /** The in-process hooks (the dispatcher calls their `after*` functions). */
  get functions(): FerryHooks {
    return this.#hooks;
  }

  /** True when some sink receives outbox events (the dispatcher then runs). */
  get delivers(): boolean {
    return this.#app.size > 0 || this.#webhook.size > 0;
  }

  /** Called (after a write queued entries) to start delivery soon. Set by the dispatcher. */
  set onQueued(wake: (() => void) | undefined) {
    this.#wake = wake;
  }

  /**
   * Asks `beforeCreate`, then the `pre-create` webhook, about a new upload. Returns the id to use
   * (`undefined`: a random one) and the metadata. Throws `ERR_HOOK_REJECTED` with the hook's status
   * and message, or `ERR_HOOK_FAILED` when a hook failed or gave an answer that cannot be used.
   */
  async beforeCreate(
    upload: Omit<CreateRequest, 'name' | 'declaredType'>,
  ): Promise<{ id: string | undefined; metadata: Record<string, string> }> {
    let id: string | undefined;
    let metadata = upload.metadata;
    const request = (): CreateRequest => ({
      ...upload,
      name: declaredNameOf(metadata),
      declaredType: declaredTypeOf(metadata),
      metadata: { ...metadata },
    });
    const local = this.#hooks.beforeCreate;
    if (local !== undefined) {
      const decision = await this.#call('beforeCreate', () => local.call(this.#hooks, request()));
      ({ id, metadata } = applyDecision(decision, id, metadata, 'beforeCreate'));
    }
    if (this.#preCreate) {
      const decision = await this.#preCreateWebhook({ ...request(), ...(id === undefined ? {} : { id }) });
      ({ id, metadata } = applyDecision(decision, id, metadata, 'the pre-create webhook'));
    }
    if (id !== undefined && (await this.#meta.get(id)) !== undefined) {
      throw new UploadError('ERR_HOOK_FAILED', {
        message: "the application's upload hook chose an id that another upload has",
      });
    }
    return { id, metadata };
  }

  /**
   * `beforeFinish` for a file about to be marked finished (under its lock). Throws
   * `ERR_HOOK_REJECTED` when the app refuses it (the caller deletes it), `ERR_HOOK_FAILED` when the
   * hook failed (the upload stays as it is, to be finished by a retry).
   */
  async beforeFinish(upload: RecordView): Promise<void> {
    const hook = this.#hooks.beforeFinish;
    if (hook === undefined) return;
    await this.#call('beforeFinish', () => hook.call(this.#hooks, this.info(upload)));
  }

  /** True when `beforeFinish` is set. */
  get checksFinish(): boolean {
    return this.#hooks.beforeFinish !== undefined;
  }

  /**
   * The outbox entries telling of `type` about `upload` (as it is after the write), one per sink
   * that wants it; `[]` when none does. Pass them to the MetaStore write that makes the change.
   */
  outbox(type: HookEventType, upload: RecordView, reason?: { code: string; message: string }): OutboxEntry[] {
    const toApp = this.#app.has(type);
    const toWebhook = this.#webhook.has(type);
    if (!toApp && !toWebhook) return [];
    const now = this.#now();
    const event: HookEvent = {
      id: randomUUID(),
      type,
      time: new Date(now).toISOString(),
      upload: this.info(upload),
    };
    if (reason !== undefined) event.reason = reason;
    const payload = JSON.stringify(event);
    const entries: OutboxEntry[] = [];
    const entry = (sink: string): OutboxEntry => ({
      sink,
      uploadId: upload.id,
      eventId: event.id,
      type,
      payload,
      createdAt: now,
    });
    if (toApp) entries.push(entry(APP_SINK));
    if (toWebhook) entries.push(entry(WEBHOOK_SINK));
    // The write that carries them commits at the end of this turn; a claim made in the meantime
    // joins that transaction and resolves only after it commits.
    const wake = this.#wake;
    if (wake !== undefined) setImmediate(wake);
    return entries;
  }

  /** An upload as hooks see it. */
  info(upload: RecordView): UploadInfo {
    return {
      id: upload.id,
      owner: upload.namespace,
      protocol: upload.protocol,
      name: declaredNameOf(upload.metadata),
      declaredType: declaredTypeOf(upload.metadata),
      size: upload.size,
      offset: upload.offset,
      sha256: upload.sha256 ?? null,
      sniffedType: upload.sniffedType ?? null,
      metadata: { ...upload.metadata },
      storage: upload.storageKey === undefined ? null : this.#locate(upload.storageKey),
      state: upload.state ?? 'uploading',
      concat: upload.concat?.kind ?? null,
      createdAt: new Date(upload.createdAt ?? this.#now()).toISOString(),
      finishedAt: isoTime(upload.finishedAt ?? null),
      expiresAt: upload.state === 'finished' ? null : isoTime(upload.expiresAt ?? null),
    };
  }

  #locate(key: string): StorageLocation | null {
    const locate = (
      this.#store as { locate?: (key: string) => { path?: string; bucket?: string; key?: string } }
    ).locate;
    if (typeof locate !== 'function') return null;
    try {
      const where = locate.call(this.#store, key);
      if (this.#store.kind === 'fs' && typeof where.path === 'string')
        return { store: 'fs', path: where.path };
      if (this.#store.kind === 's3' && typeof where.bucket === 'string' && typeof where.key === 'string') {
        return { store: 's3', bucket: where.bucket, key: where.key };
      }
    } catch {
      // A key this store did not make: say nothing rather than something wrong.
    }
    return null;
  }

  /** Runs an in-process hook with the hook timeout; maps its failure to an UploadError. */
  async #call<T>(name: string, run: () => T | Promise<T>): Promise<T> {
    try {
      return await withTimeout(run, this.#config.hookTimeoutMs, `the ${name} hook`);
    } catch (error) {
      if (error instanceof HookRejection) {
        throw new UploadError('ERR_HOOK_REJECTED', { status: error.status, message: error.message });
      }
      if (error instanceof UploadError) throw error;
      this.#logger.error({ err: error, hook: name }, 'an upload hook failed');
      throw hookFailed();
    }
  }

  async #preCreateWebhook(request: CreateRequest & { id?: string }): Promise<CreateDecision | undefined> {
    const eventId = randomUUID();
    const body = JSON.stringify({
      id: eventId,
      type: 'pre-create',
      time: new Date(this.#now()).toISOString(),
      upload: request,
    });
    const answer = await sendWebhook({
      url: this.#config.hookUrl,
      secret: this.#config.hookSecret,
      eventId,
      type: 'pre-create',
      body,
      timeoutMs: this.#config.hookTimeoutMs,
      now: this.#now,
    });
    if (answer.answered && answer.ok) return parseDecision(answer.body);
    if (answer.answered && answer.status >= 400 && answer.status <= 499) {
      throw new UploadError('ERR_HOOK_REJECTED', {
        status: answer.status,
        message: rejectionMessage(answer.body),
      });
    }
    const why = answer.answered ? `answered ${answer.status}` : answer.error;
    this.#logger.warn({ hookUrl: this.#config.hookUrl, why }, 'the pre-create webhook failed');
    throw hookFailed();
  }

  #listenToProgress(events: UploadEvents, onProgress: NonNullable<FerryHooks['onProgress']>): void {
    const interval = Math.max(0, this.#hooks.progressIntervalMs ?? 1000);
    const last = new Map<string, number>();
    events.subscribeAll((event: UploadEventRecord) => {
      if (event.type === 'removed' || event.type === 'completed' || event.type === 'failed') {
        last.delete(event.type === 'removed' ? event.id : event.record.id);
        return;
      }
      if (event.type !== 'progress') return;
      const now = performance.now();
      const id = event.record.id;
      if (now - (last.get(id) ?? Number.NEGATIVE_INFINITY) < interval) return;
      last.set(id, now);
      try {
        const result: unknown = onProgress.call(this.#hooks, {
          id,
          owner: event.record.namespace,
          receivedBytes: event.receivedBytes,
          size: event.record.size,
          partsReceived: event.partsReceived,
        });
        if (result instanceof Promise) result.catch((error) => this.#progressFailed(error));
      } catch (error) {
        this.#progressFailed(error);
      }
    });
  }

  #progressFailed(error: unknown): void {
    this.#logger.warn({ err: error }, 'the onProgress hook failed');
  }
}

/**
 * Runs an app's function, failing with "<what> did not return within <ms> ms" when it takes longer
 * (the function itself is not stopped: an in-process hook cannot be).
 */
export async function withTimeout<T>(run: () => T | Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(run),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what} did not return within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function hookFailed(): UploadError {
  return new UploadError('ERR_HOOK_FAILED', { headers: { 'retry-after': '5' } });
}

function applyDecision(
  decision: CreateDecision | undefined,
  id: string | undefined,
  metadata: Record<string, string>,
  who: string,
): { id: string | undefined; metadata: Record<string, string> } {
  if (decision === undefined || decision === null) return { id, metadata };
  if (typeof decision !== 'object') throw invalidAnswer(who, 'an object with "id" and/or "metadata"');
  let nextId = id;
  let nextMetadata = metadata;
  if (decision.id !== undefined) {
    if (typeof decision.id !== 'string' || !isValidUploadId(decision.id)) {
      throw invalidAnswer(who, 'an "id" of 16..128 characters of A-Z a-z 0-9 _ -');
    }
    nextId = decision.id;
  }
  if (decision.metadata !== undefined) {
    const given = decision.metadata as unknown;
    if (
      typeof given !== 'object' ||
      given === null ||
      Array.isArray(given) ||
      Object.values(given).some((value) => typeof value !== 'string')
    ) {
      throw invalidAnswer(who, '"metadata" as an object of strings');
    }
    nextMetadata = { ...(given as Record<string, string>) };
  }
  return { id: nextId, metadata: nextMetadata };
}

function invalidAnswer(who: string, expected: string): UploadError {
  return new UploadError('ERR_HOOK_FAILED', {
    message: `the application's upload hook gave an answer the server cannot use (${who} must return ${expected})`,
    headers: { 'retry-after': '5' },
  });
}

/** A 2xx answer: empty, or JSON `{ "id"?, "metadata"? }`. */
function parseDecision(body: string): CreateDecision | undefined {
  if (body.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw invalidAnswer('the pre-create webhook', 'an empty body or JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalidAnswer('the pre-create webhook', 'a JSON object');
  }
  return parsed as CreateDecision;
}

/** The message of a receiver's refusal: JSON `message` / `error.message` / `error`, or its text. */
function rejectionMessage(body: string): string {
  let text = body.trim();
  try {
    const parsed = JSON.parse(text) as { message?: unknown; error?: unknown };
    const error = parsed.error as { message?: unknown } | string | undefined;
    const message =
      typeof parsed.message === 'string'
        ? parsed.message
        : typeof error === 'string'
          ? error
          : typeof error?.message === 'string'
            ? error.message
            : undefined;
    if (message !== undefined) text = message;
  } catch {
    // Plain text: used as it is.
  }
  // One line, printable, bounded: it becomes a response body and may be shown to a user.
  text = Array.from(text, (char) => (char < ' ' || char === '\u007f' ? ' ' : char))
    .join('')
    .trim()
    .slice(0, 500);
  return text === '' ? 'the application refused this upload' : text;
}
