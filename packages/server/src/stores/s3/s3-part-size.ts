/**
 * Part sizes of the S3 store. S3 (and Ceph RGW) allow at most 10,000 parts per multipart upload,
 * each from 5 MiB to 5 GiB except the last, which may be smaller. A tus upload is cut into parts
 * by the store, so the size of part `n` must follow from what is recorded in the storage key alone
 * (any node continues any upload): a fixed size chosen from the declared length, or — for an
 * upload whose length is deferred — a size that doubles every 1,000 parts, so 10,000 parts reach
 * S3's 5 TiB object limit from an 8 MiB start without knowing the length up front.
 */
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** S3's smallest part (every part but the last). */
export const MIN_PART_SIZE = 5 * MiB;
/** S3's largest part. */
export const MAX_PART_SIZE = 5 * GiB;
/** S3's most parts per multipart upload. */
export const MAX_PARTS = 10_000;
/** The part size used when the configuration names none. */
export const DEFAULT_PART_SIZE = 8 * MiB;
/** A deferred-length upload doubles its part size after this many parts. */
export const GROWTH_STEP = 1000;

export interface PartPlan {
  /** Size of part 1 (and of every part when `grows` is false), in bytes. */
  readonly size: number;
  /** The length was unknown at creation: the part size doubles every `GROWTH_STEP` parts. */
  readonly grows: boolean;
}

/**
 * Chooses how an upload of `size` bytes (`null`: deferred) is cut into parts: the preferred size,
 * raised (in whole MiB) as far as needed to fit in 10,000 parts, within 5 MiB..5 GiB.
 */
export function choosePartPlan(size: number | null, preferred: number = DEFAULT_PART_SIZE): PartPlan {
  const base = clampPartSize(preferred);
  if (size === null) return { size: base, grows: true };
  const needed = Math.ceil(size / MAX_PARTS / MiB) * MiB;
  return { size: clampPartSize(Math.max(base, needed)), grows: false };
}

/** The size of part `n` (from 1) under `plan`; only the last part of an upload may be smaller. */
export function partSizeOf(plan: PartPlan, n: number): number {
  if (!plan.grows) return plan.size;
  const doublings = Math.floor((n - 1) / GROWTH_STEP);
  return Math.min(MAX_PART_SIZE, plan.size * 2 ** doublings);
}

/** The most bytes an upload can hold under `plan` (10,000 parts). */
export function capacityOf(plan: PartPlan): number {
  if (!plan.grows) return plan.size * MAX_PARTS;
  let total = 0;
  for (let step = 0; step < MAX_PARTS / GROWTH_STEP; step++) {
    total += GROWTH_STEP * partSizeOf(plan, step * GROWTH_STEP + 1);
  }
  return total;
}

function clampPartSize(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new RangeError(`invalid part size ${bytes}`);
  return Math.min(MAX_PART_SIZE, Math.max(MIN_PART_SIZE, bytes));
}
