/**
 * The storage side of the expiry sweeper: asks a store that can list what it holds (S3: multipart
 * uploads and incomplete parts under its key prefix) to remove what no live upload owns and is
 * older than the expiry. Expired uploads the MetaStore knows are removed first, by the sweeper
 * itself; this catches what a crash or an outage left with no record pointing at it.
 *
 * A storage listing can be long (ListObjectsV2 walks every object under the prefix), so it runs at
 * most every `intervalMs` of the service's clock, not on every sweep.
 */
import type { Logger } from 'pino';
import type { MetaStore } from '../meta/meta-store.ts';
import type { DataStore } from '../stores/data-store.ts';

export interface OrphanSweepOptions {
  olderThan: number;
  liveKey(id: string): Promise<string | undefined>;
}

export interface OrphanSweepable {
  sweepOrphans(options: OrphanSweepOptions): Promise<{ abortedUploads: number; deletedParts: number }>;
}

/** Default time between two storage sweeps: 15 minutes. */
export const DEFAULT_ORPHAN_SWEEP_INTERVAL_MS = 15 * 60 * 1000;

export function orphanSweeperOf(store: DataStore): OrphanSweepable | undefined {
  const candidate = store as unknown as Partial<OrphanSweepable>;
  return typeof candidate.sweepOrphans === 'function' ? (store as unknown as OrphanSweepable) : undefined;
}

export class OrphanSweep {
  readonly #store: OrphanSweepable;
  readonly #meta: MetaStore;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  #lastRun: number | undefined;

  constructor(options: { store: OrphanSweepable; meta: MetaStore; logger: Logger; intervalMs?: number }) {
    this.#store = options.store;
    this.#meta = options.meta;
    this.#logger = options.logger;
    this.#intervalMs = options.intervalMs ?? DEFAULT_ORPHAN_SWEEP_INTERVAL_MS;
  }

  /** Runs when due (`now` past the last run by the interval); `expiryMs` is the uploads' lifetime. */
  async run(now: number, expiryMs: number): Promise<void> {
    if (this.#lastRun !== undefined && now - this.#lastRun < this.#intervalMs) return;
    this.#lastRun = now;
    try {
      const result = await this.#store.sweepOrphans({
        olderThan: now - expiryMs,
        liveKey: async (id) => {
          const record = await this.#meta.get(id);
          return record?.state === 'uploading' ? record.storageKey : undefined;
        },
      });
      if (result.abortedUploads > 0 || result.deletedParts > 0) {
        this.#logger.info(result, 'orphaned storage removed');
      }
    } catch (error) {
      // The next due sweep tries again; records were swept already.
      this.#lastRun = undefined;
      this.#logger.warn({ err: error }, 'sweeping orphaned storage failed');
    }
  }
}
