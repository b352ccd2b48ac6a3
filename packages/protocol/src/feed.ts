/**
 * The uploads feed's wire shapes: `GET /uploads` lists the uploads in progress in the caller's
 * namespace, whichever API (tus or parts) and client send them, and `GET /uploads/events` follows
 * them live as Server-Sent Events. See docs/uploads-feed.md.
 */
import type { FileInfo } from './parts.ts';

/** One upload in progress. */
export interface UploadSummary {
  id: string;
  protocol: 'tus' | 'parts';
  /** The upload's own URL: the tus upload URL, or the parts API's `/uploads/:id`. */
  url: string;
  /** Declared size in bytes; `null` while a tus upload defers its length. */
  size: number | null;
  /**
   * Bytes received so far: the tus offset (during a `PATCH`, the bytes that arrived so far), or the
   * bytes of the stored parts.
   */
  receivedBytes: number;
  /** Parts API: parts stored so far; `null` for tus. */
  partsReceived: number | null;
  /** Parts API: how many parts the upload has; `null` for tus. */
  partCount: number | null;
  /** The file name from the metadata (`filename`, or `name`), if the client gave one. */
  name: string | null;
  /** The MIME type from the metadata (`filetype`, or `type`), as the client declared it. */
  type: string | null;
  /** ISO 8601 */
  createdAt: string;
  /** ISO 8601: the last change the server recorded. */
  updatedAt: string;
  /** ISO 8601; `null` when unfinished uploads never expire. */
  expiresAt: string | null;
}

/** `GET /uploads`, and the data of the feed's `snapshot` event. */
export interface UploadList {
  /** Newest first. */
  uploads: UploadSummary[];
  /** True when there were more uploads in progress than the list holds. */
  truncated: boolean;
}

/**
 * The data of each event of `GET /uploads/events` (the SSE event name is `type`). Events are
 * upserts keyed by `upload.id` (or `id`): one may repeat what the snapshot already said.
 */
export type UploadFeedEvent =
  | ({ type: 'snapshot' } & UploadList)
  | { type: 'created'; upload: UploadSummary }
  | { type: 'progress'; upload: UploadSummary }
  | { type: 'completed'; upload: UploadSummary; file: FileInfo }
  | { type: 'failed'; upload: UploadSummary; error: { code: string; message: string } }
  | { type: 'removed'; id: string };

export type UploadFeedEventType = UploadFeedEvent['type'];
