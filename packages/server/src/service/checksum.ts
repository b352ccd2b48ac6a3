/** Incremental digests for tus `Upload-Checksum` (sha1, md5, sha256, crc32) on node:crypto / node:zlib. */
import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { ChecksumAlgorithm } from '@ferry/protocol';

export interface IncrementalDigest {
  update(chunk: Uint8Array): void;
  digest(): Buffer;
}

export function createDigest(algorithm: ChecksumAlgorithm): IncrementalDigest {
  if (algorithm === 'crc32') {
    let value = 0;
    return {
      update(chunk) {
        value = crc32(chunk, value);
      },
      digest() {
        const out = Buffer.alloc(4);
        out.writeUInt32BE(value >>> 0);
        return out;
      },
    };
  }
  const hash: Hash = createHash(algorithm);
  return {
    update(chunk) {
      hash.update(chunk);
    },
    digest() {
      return hash.digest();
    },
  };
}
