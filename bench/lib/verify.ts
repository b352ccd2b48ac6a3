// After every run: the stored bytes of every upload must hash to what the client sent. Then the
// files are removed (unless the caller keeps them until its workload ends) so a workload holds no
// more than one run's data on disk.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import type { ServerDef } from './servers.ts';
import type { UploadRecord } from './tus-load.ts';

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface Verification {
  /** Files whose size and SHA-256 matched. */
  verified: number;
  /** One line per upload whose stored bytes are missing or differ. */
  failures: string[];
}

export async function verifyAndRemove(
  def: ServerDef,
  dataDir: string,
  uploads: readonly UploadRecord[],
  remove = true,
): Promise<Verification> {
  const result: Verification = { verified: 0, failures: [] };
  for (const upload of uploads) {
    const file = def.storedFile(dataDir, upload.id);
    if (file !== undefined) {
      try {
        const size = (await stat(file)).size;
        const digest = size === upload.size ? await sha256File(file) : undefined;
        if (digest === upload.sha256) result.verified++;
        else {
          result.failures.push(
            `${upload.url}: stored ${size} bytes, sha256 ${digest ?? '(not hashed)'}; sent ${upload.size} bytes, sha256 ${upload.sha256}`,
          );
        }
      } catch (error) {
        result.failures.push(`${upload.url}: stored file ${file} unreadable (${String(error)})`);
      }
    }
    if (remove) for (const leftover of def.leftovers(dataDir, upload.id)) await rm(leftover, { force: true });
  }
  return result;
}
