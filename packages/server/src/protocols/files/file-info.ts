/**
 * How the JSON APIs (parts API, uploads feed) describe a finished file. `name` and `type` are read
 * from the tus-style metadata keys, so downloads and listings name and type a file alike whichever
 * API created it.
 */
import type { FileInfo } from '@ferry/protocol';
import type { ServerConfig } from '../../config.ts';
import type { UploadRecord } from '../../meta/meta-store.ts';

export const NAME_KEY = 'filename';
export const TYPE_KEY = 'filetype';

/** The file name the client declared: tus clients send `filename`, Uppy also `name`; `null` when neither. */
export function declaredNameOf(metadata: Readonly<Record<string, string>>): string | null {
  return metadata[NAME_KEY] ?? metadata['name'] ?? null;
}

export function isoTime(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function fileInfo(origin: string, config: Readonly<ServerConfig>, record: UploadRecord): FileInfo {
  return {
    id: record.id,
    url: `${origin}${config.basePath}${record.id}`,
    size: record.size ?? record.offset,
    name: record.metadata[NAME_KEY] ?? null,
    type: record.metadata[TYPE_KEY] ?? null,
    sniffedType: record.sniffedType,
    sha256: record.sha256,
    metadata: record.metadata,
    finishedAt: new Date(record.finishedAt ?? record.updatedAt).toISOString(),
  };
}
