/**
 * Delivers the hook outbox: each queued event goes to its sink (the in-process `after*` function,
 * or the webhook URL) until the sink takes it (the function returns; the URL answers 2xx). A
 * failure puts the event back with a growing delay — 1 s, 2 s, 4 s… up to
 * `hookRetryMaxDelaySeconds`, each drawn between half and all of that (jitter, so a receiver back
 * from an outage is not hit by every event in the same second) — and holds up only the events of
 * the same upload and sink behind it: delivery is at least once, in order per upload.
 *
 * Entries are claimed with a lease (the request timeout plus a margin): a process that dies while
 * delivering leaves them to be claimed again when the lease ends, by itself after a restart or by
 * another process on the same metadata store. Delivery starts as soon as a write queues something
 * and the outbox is also polled, so entries left by a previous run or another node go out too.
 */
import type { Logger } from 'pino';
import type { ServerConfig } from '../config.ts';
import type { MetaStore, OutboxItem } from '../meta/meta-store.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { HookEvent, HookEventType } from './hook-types.ts';
import { AFTER_HOOKS, APP_SINK, type UploadHooks, WEBHOOK_SINK, withTimeout } from './upload-hooks.ts';
import { sendWebhook } from './webhook.ts';

/** Entries delivered at the same time (each of another upload or sink). */
const BATCH = 16;
/** How often the outbox is looked at when nothing wakes the dispatcher, in ms. */
const POLL_MS = 1000;
/** The first retry's delay, in ms; doubled per failed attempt. */
const FIRST_RETRY_MS = 1000;

export interface OutboxDispatcherOptions {
  config: Readonly<ServerConfig>;
  meta: MetaStore;
  hooks: UploadHooks;
  logger: Logger;
  metrics: Metrics;
  now: () => number;
  /** Least ms between two looks at the outbox when nothing wakes the dispatcher. Default 1000. */
  pollMs?: number;
}

export class OutboxDispatcher {
  readonly #config: Readonly<ServerConfig>;
  readonly #meta: MetaStore;
  readonly #hooks: UploadHooks;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #now: () => number;
  readonly #pollMs: number;
  #timer: NodeJS.Timeout | undefined;
  /** The pass running now, if any. */
  #pass: Promise<void> | undefined;
  /** Woken while a pass ran: run another one right after it. */
  #again = false;
  #stopped = true;
  #warnedNoUrl = false;

  constructor(options: OutboxDispatcherOptions) {
    this.#config = options.config;
    this.#meta = options.meta;
    this.#hooks = options.hooks;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#now = options.now;
    this.#pollMs = options.pollMs ?? POLL_MS;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#hooks.onQueued = () => this.wake();
    this.wake();
  }

  /** Delivers what is due now (and keeps going while more becomes due). */
  wake(): void {
    if (this.#stopped) return;
    if (this.#pass !== undefined) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pass = this.#run().finally(() => {
      this.#pass = undefined;
      if (this.#stopped) return;
      if (this.#again) {
        this.#again = false;
        this.wake();
        return;
      }
      this.#timer = setTimeout(() => this.wake(), this.#pollMs);
      this.#timer.unref();
    });
  }

  /** Stops claiming; waits for the deliveries under way (each bounded by `hookTimeoutMs`). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#hooks.onQueued = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#pass;
  }

  /** Resolves when nothing is due and nothing is being delivered (tests). */
  async idle(): Promise<void> {
    while (this.#pass !== undefined) await this.#pass;
  }

  async #run(): Promise<void> {
    try {
      while (!this.#stopped) {
        const now = this.#now();
        const leaseUntil = now + this.#config.hookTimeoutMs + 30_000;
        const items = await this.#meta.claimOutbox(now, BATCH, leaseUntil);
        if (items.length === 0) return;
        await Promise.all(items.map((item) => this.#deliver(item)));
      }
    } catch (error) {
      // The metadata store failed (closed, disk full): try again at the next poll.
      if (!this.#stopped) this.#logger.error({ err: error }, 'the hook outbox could not be read');
    }
  }

  async #deliver(item: OutboxItem): Promise<void> {
    let failure: string | undefined;
    try {
      failure = item.sink === WEBHOOK_SINK ? await this.#toWebhook(item) : await this.#toApp(item);
    } catch (error) {
      failure = error instanceof Error ? error.message : String(error);
    }
    this.#metrics.hookDeliveries.inc({
      sink: item.sink,
      result: failure === undefined ? 'delivered' : 'failed',
    });
    if (failure === undefined) {
      await this.#meta.settleOutbox(item.seq);
      return;
    }
    const attempts = item.attempts + 1;
    const ceiling = Math.min(
      this.#config.hookRetryMaxDelaySeconds * 1000,
      FIRST_RETRY_MS * 2 ** Math.min(attempts - 1, 30),
    );
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.#logger.warn(
      {
        sink: item.sink,
        uploadId: item.uploadId,
        event: item.type,
        eventId: item.eventId,
        attempts,
        retryInMs: delay,
        why: failure,
      },
      'hook event not delivered; it will be retried',
    );
    await this.#meta.retryOutbox(item.seq, this.#now() + delay, failure);
  }

  /** Undefined when delivered, else why not. */
  async #toWebhook(item: OutboxItem): Promise<string | undefined> {
    if (this.#config.hookUrl === '') {
      if (!this.#warnedNoUrl) {
        this.#warnedNoUrl = true;
        this.#logger.warn('webhook events are queued but no hook URL is set: they wait until one is');
      }
      return 'no hook URL is set';
    }
    const answer = await sendWebhook({
      url: this.#config.hookUrl,
      secret: this.#config.hookSecret,
      eventId: item.eventId,
      type: item.type,
      body: item.payload,
      attempt: item.attempts + 1,
      timeoutMs: this.#config.hookTimeoutMs,
      now: this.#now,
    });
    if (!answer.answered) return answer.error;
    return answer.ok ? undefined : `the receiver answered ${answer.status}`;
  }

  async #toApp(item: OutboxItem): Promise<string | undefined> {
    if (item.sink !== APP_SINK) return `unknown sink ${item.sink}`;
    const name = AFTER_HOOKS[item.type as HookEventType];
    const functions = this.#hooks.functions;
    const hook = name === undefined ? undefined : functions[name];
    // Queued by a run that had this hook and delivered by one that has it no more: nobody to tell.
    if (typeof hook !== 'function') return undefined;
    const event = JSON.parse(item.payload) as HookEvent;
    try {
      await withTimeout(
        () => (hook as (event: HookEvent) => unknown).call(functions, event),
        this.#config.hookTimeoutMs,
        name,
      );
      return undefined;
    } catch (error) {
      return error instanceof Error ? `${name} threw: ${error.message}` : `${name} threw: ${String(error)}`;
    }
  }
}
