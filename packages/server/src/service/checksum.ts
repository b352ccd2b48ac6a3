/**
 * Incremental digests for tus `Upload-Checksum`: sha1, md5 and sha256 on the hashing thread
 * (digest-thread.ts), crc32 with node:zlib on this one (it costs little).
 */
import { crc32 } from 'node:zlib';
import type { ChecksumAlgorithm } from '@ferry/protocol';
import type { DigestThread } from './digest-thread.ts';

export interface IncrementalDigest {
  update(chunk: Uint8Array): void;
  digest(): Promise<Buffer>;
  /** Frees the digest without a result. */
  discard(): void;
}

export function createDigest(algorithm: ChecksumAlgorithm, thread: DigestThread): IncrementalDigest {
  if (algorithm === 'crc32') {
    let value = 0;
    return {
      update(chunk) {
        value = crc32(chunk, value);
      },
      async digest() {
        const out = Buffer.alloc(4);
        out.writeUInt32BE(value >>> 0);
        return out;
      },
      discard() {},
    };
  }
  return thread.create(algorithm);
}
