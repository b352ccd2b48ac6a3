/**
 * Locker: one writer per upload. A request that wants a held lock asks the holder to release it
 * (`onReleaseRequested`); a holder whose body has stalled stops reading, keeps what it stored and
 * releases, so a resuming client is never blocked behind a dead connection.
 */

export interface AcquireOptions {
  /** Gives up waiting (rejects with the signal's reason). */
  signal?: AbortSignal;
  /** How long to wait for the holder before failing with `LockTimeoutError`, in ms. */
  timeoutMs: number;
  /** Called on the holder's side when another request waits for this lock. */
  onReleaseRequested?: () => void;
}

export interface Lock {
  readonly key: string;
  release(): Promise<void>;
}

export interface Locker {
  acquire(key: string, options: AcquireOptions): Promise<Lock>;
  close(): Promise<void>;
}

export class LockTimeoutError extends Error {
  constructor(key: string) {
    super(`timed out waiting for the lock on ${key}`);
    this.name = 'LockTimeoutError';
  }
}
