/** Listing what a resume store holds, for an app that offers to continue after a reload or restart. */
import type { ResumableUpload, ResumeStore } from './seams.ts';

/** Every unfinished upload in `store`, with the file when the store kept it. Expired entries are left out. */
export async function listResumable(store: ResumeStore): Promise<ResumableUpload[]> {
  const entries = await store.list();
  return Promise.all(
    entries.map(async ({ key, entry }) => ({ key, entry, file: await store.keptFile?.(key) })),
  );
}
