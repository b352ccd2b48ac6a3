/** Turns upload records and events into the feed's wire shapes (docs/uploads-feed.md). */
import { partCountOf, type UploadFeedEvent, type UploadSummary } from '@ferry/protocol';
import type { ServerConfig } from '../../config.ts';
import type { UploadRecord } from '../../meta/meta-store.ts';
import type { UploadEventRecord } from '../../service/upload-events.ts';
import { declaredNameOf, fileInfo, isoTime, TYPE_KEY } from '../files/file-info.ts';

export interface SummaryInput {
  record: UploadRecord;
  receivedBytes: number;
  partsReceived: number;
  /** When bytes last arrived, if later than the record's last write (a `PATCH` being read). */
  activeAt?: number;
}

export function uploadSummary(
  origin: string,
  config: Readonly<ServerConfig>,
  input: SummaryInput,
): UploadSummary {
  const { record } = input;
  const parts = record.protocol === 'parts';
  const size = record.size ?? 0;
  // Uppy's tus plugin sends `name` and `type` next to tus-js-client's `filename` and `filetype`.
  const metadata = record.metadata;
  return {
    id: record.id,
    protocol: record.protocol,
    url: `${origin}${parts ? config.partsPath : config.basePath}${record.id}`,
    size: record.size,
    receivedBytes: input.receivedBytes,
    partsReceived: parts ? input.partsReceived : null,
    partCount: parts ? partCountOf(size, record.partSize ?? Math.max(1, size)) : null,
    name: declaredNameOf(metadata),
    type: metadata[TYPE_KEY] ?? metadata['type'] ?? null,
    createdAt: new Date(record.createdAt).toISOString(),
    updatedAt: new Date(Math.max(record.updatedAt, input.activeAt ?? 0)).toISOString(),
    expiresAt: isoTime(record.expiresAt),
  };
}

/** The feed event for an internal event. */
export function feedEvent(
  origin: string,
  config: Readonly<ServerConfig>,
  event: UploadEventRecord,
  now: number,
): UploadFeedEvent {
  if (event.type === 'removed') return { type: 'removed', id: event.id };
  const { record } = event;
  const partCount = partCountOf(record.size ?? 0, record.partSize ?? Math.max(1, record.size ?? 0));
  switch (event.type) {
    case 'created':
      return {
        type: 'created',
        upload: uploadSummary(origin, config, { record, receivedBytes: record.offset, partsReceived: 0 }),
      };
    case 'progress':
      return {
        type: 'progress',
        upload: uploadSummary(origin, config, {
          record,
          receivedBytes: event.receivedBytes,
          partsReceived: event.partsReceived,
          activeAt: now,
        }),
      };
    case 'completed': {
      const size = record.size ?? record.offset;
      return {
        type: 'completed',
        upload: uploadSummary(origin, config, { record, receivedBytes: size, partsReceived: partCount }),
        file: fileInfo(origin, config, record),
      };
    }
    case 'failed': {
      // A refused completion (wrong SHA-256): every part had arrived, or every tus byte.
      const received = record.protocol === 'parts' ? (record.size ?? 0) : record.offset;
      return {
        type: 'failed',
        upload: uploadSummary(origin, config, { record, receivedBytes: received, partsReceived: partCount }),
        error: { code: event.error.code, message: event.error.message },
      };
    }
  }
}
