// Upload bodies for the load client. Every body is a window onto one pre-generated random pool, read
// from a per-upload start position and wrapping at the end, so sending costs no copy and no random
// generation while the clock runs, and two uploads of a run never carry the same bytes (a server that
// mixed them up would fail the hash check).
import { createHash, randomFillSync } from 'node:crypto';

export interface Payload {
  /** Yields the bytes [offset, offset + length) of upload `index` as views onto the pool. */
  slices(index: number, offset: number, length: number, sliceSize: number): Generator<Buffer>;
  /** SHA-256 (hex) of the whole body of upload `index` with `size` bytes; cached. */
  sha256(index: number, size: number): string;
}

export function createPayload(poolSize = 32 * 1024 * 1024): Payload {
  const pool = randomFillSync(Buffer.allocUnsafe(poolSize));
  const digests = new Map<string, string>();
  // A large odd stride spreads the start positions of consecutive uploads over the pool.
  const startOf = (index: number) => (index * 2_654_435_761) % poolSize;

  function* slices(index: number, offset: number, length: number, sliceSize: number): Generator<Buffer> {
    let position = (startOf(index) + offset) % poolSize;
    let remaining = length;
    while (remaining > 0) {
      const size = Math.min(sliceSize, remaining, poolSize - position);
      yield pool.subarray(position, position + size);
      remaining -= size;
      position = (position + size) % poolSize;
    }
  }

  return {
    slices,
    sha256(index, size) {
      const key = `${index}:${size}`;
      let digest = digests.get(key);
      if (digest === undefined) {
        const hash = createHash('sha256');
        for (const slice of slices(index, 0, size, poolSize)) hash.update(slice);
        digest = hash.digest('hex');
        digests.set(key, digest);
      }
      return digest;
    },
  };
}
