/**
 * When a store tells React about changes. A change of state (paused, failed, done, a file added)
 * goes out at once — in a microtask, so changes made together render together. Progress goes out
 * at most once per interval: a dozen parallel uploads each reporting every 100 ms would otherwise
 * re-render the list over a hundred times a second. A progress render always runs in a task of its
 * own (a timer, of 0 ms when the last render is older than the interval), never inside the task
 * that reported the progress: a store's render is synchronous, and an upload's progress comes from
 * a network event that has its own work to do, so together they made one long main-thread task.
 */
export class RenderScheduler {
  readonly #intervalMs: number;
  readonly #flush: () => void;
  readonly #now: () => number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #queued = false;
  #lastRun = Number.NEGATIVE_INFINITY;

  constructor(intervalMs: number, flush: () => void, now: () => number = () => performance.now()) {
    this.#intervalMs = intervalMs;
    this.#flush = flush;
    this.#now = now;
  }

  /** Something changed; `urgent` for what a person should see at once (anything but progress). */
  request(urgent: boolean): void {
    if (this.#queued) return;
    if (urgent) {
      this.#queued = true;
      queueMicrotask(() => this.#run());
      return;
    }
    const wait = this.#intervalMs - (this.#now() - this.#lastRun);
    this.#timer ??= setTimeout(() => this.#run(), Math.max(0, wait));
  }

  /** Drops a pending progress render (the store is no longer used). */
  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #run(): void {
    this.#queued = false;
    this.dispose();
    this.#lastRun = this.#now();
    this.#flush();
  }
}
