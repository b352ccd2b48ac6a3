/**
 * Watches one request body while it is written: stops it when it sends nothing for `bodyTimeoutMs`
 * (tusd answers such read timeouts with 500 so clients retry), and when another request asked for
 * the lock and this body has been idle for `stallMs` — a stalled PATCH must never block a resuming
 * client, and an active one is not cut off by a mere HEAD.
 */
import { UploadError } from '@ferry/protocol';

const CHECK_EVERY_MS = 100;

export class TransferWatch {
  readonly #controller = new AbortController();
  readonly #stallMs: number;
  readonly #bodyTimeoutMs: number;
  #lastActivity = performance.now();
  #releaseRequested = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: { stallMs: number; bodyTimeoutMs: number; signals: Array<AbortSignal | undefined> }) {
    this.#stallMs = options.stallMs;
    this.#bodyTimeoutMs = options.bodyTimeoutMs;
    for (const signal of options.signals) {
      if (signal === undefined) continue;
      if (signal.aborted) this.#stop(signal.reason);
      else signal.addEventListener('abort', () => this.#stop(signal.reason), { once: true });
    }
    this.#timer = setInterval(() => this.#check(), Math.min(CHECK_EVERY_MS, this.#stallMs || CHECK_EVERY_MS));
    this.#timer.unref();
  }

  /** Aborted when the body should stop being read; `reason` says why. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Records that bytes arrived. */
  touch(): void {
    this.#lastActivity = performance.now();
  }

  /** Another request waits for this upload's lock. */
  requestRelease(): void {
    this.#releaseRequested = true;
    this.#check();
  }

  dispose(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    if (this.#controller.signal.aborted) return;
    const idle = performance.now() - this.#lastActivity;
    if (this.#releaseRequested && idle >= this.#stallMs) this.#stop(new UploadError('ERR_LOCK_LOST'));
    else if (this.#bodyTimeoutMs > 0 && idle >= this.#bodyTimeoutMs)
      this.#stop(new UploadError('ERR_BODY_TIMEOUT'));
  }

  #stop(reason: unknown): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
    this.dispose();
  }
}
