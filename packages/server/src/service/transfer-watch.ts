/**
 * Watches one request body while it is written: stops it when it sends nothing for `bodyTimeoutMs`
 * (tusd answers such read timeouts with 500 so clients retry) or brings less than
 * `minBytesPerSecond` over a window of `bodyTimeoutMs` (a trickle of a byte a second keeps an idle
 * timer from firing, and would hold a connection and a lock for ever), and when another request asked for
 * the lock and this body has been idle for `stallMs` — a stalled PATCH must never block a resuming
 * client, and an active one is not cut off by a mere HEAD.
 */
import { UploadError } from '@ferry/protocol';

const CHECK_EVERY_MS = 100;

export class TransferWatch {
  readonly #controller = new AbortController();
  readonly #stallMs: number;
  readonly #bodyTimeoutMs: number;
  readonly #minBytesPerSecond: number;
  #lastActivity = performance.now();
  /** Start of the current rate window (at the first byte; waiting for the lock does not count). */
  #windowStart: number | undefined;
  #windowBytes = 0;
  #releaseRequested = false;
  #timer: NodeJS.Timeout | undefined;
  #request: AbortSignal | undefined;
  readonly #onRequestAbort = () => this.stop(this.#request?.reason);

  /** `request` aborts when the client goes away; its listener is removed by `dispose`. */
  constructor(options: {
    stallMs: number;
    bodyTimeoutMs: number;
    minBytesPerSecond?: number;
    request?: AbortSignal | undefined;
  }) {
    this.#stallMs = options.stallMs;
    this.#bodyTimeoutMs = options.bodyTimeoutMs;
    this.#minBytesPerSecond = options.minBytesPerSecond ?? 0;
    this.#request = options.request;
    if (this.#request?.aborted) this.stop(this.#request.reason);
    else this.#request?.addEventListener('abort', this.#onRequestAbort);
    this.#timer = setInterval(() => this.#check(), Math.min(CHECK_EVERY_MS, this.#stallMs || CHECK_EVERY_MS));
    this.#timer.unref();
  }

  /** Aborted when the body should stop being read; `reason` says why. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Records that `bytes` arrived. */
  touch(bytes = 0): void {
    this.#lastActivity = performance.now();
    this.#windowStart ??= this.#lastActivity;
    this.#windowBytes += bytes;
  }

  /** Another request waits for this upload's lock. */
  requestRelease(): void {
    this.#releaseRequested = true;
    this.#check();
  }

  /** Stops the body now (shutdown, client gone); what arrived is kept. */
  stop(reason: unknown): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
    this.dispose();
  }

  dispose(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#request?.removeEventListener('abort', this.#onRequestAbort);
    this.#request = undefined;
  }

  #check(): void {
    if (this.#controller.signal.aborted) return;
    const idle = performance.now() - this.#lastActivity;
    if (this.#releaseRequested && idle >= this.#stallMs) this.stop(new UploadError('ERR_LOCK_LOST'));
    else if (this.#bodyTimeoutMs > 0 && idle >= this.#bodyTimeoutMs)
      this.stop(new UploadError('ERR_BODY_TIMEOUT'));
    else this.#checkRate();
  }

  #checkRate(): void {
    if (this.#windowStart === undefined || this.#bodyTimeoutMs === 0 || this.#minBytesPerSecond === 0) return;
    const elapsed = performance.now() - this.#windowStart;
    if (elapsed < this.#bodyTimeoutMs) return;
    if (this.#windowBytes < (this.#minBytesPerSecond * elapsed) / 1000) {
      this.stop(
        new UploadError('ERR_BODY_TIMEOUT', {
          message: `the request body arrived slower than ${this.#minBytesPerSecond} bytes per second; what arrived was kept, retry`,
          details: { minBytesPerSecond: this.#minBytesPerSecond },
        }),
      );
      return;
    }
    this.#windowStart = performance.now();
    this.#windowBytes = 0;
  }
}
