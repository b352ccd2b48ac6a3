/**
 * The uploads feed over HTTP (see docs/uploads-feed.md): the uploads in progress in the caller's
 * namespace, whichever API and client send them.
 *
 *   GET /uploads          JSON list: { uploads: [...], truncated }
 *   GET /uploads/events   Server-Sent Events: snapshot, created, progress, completed, failed, removed
 */
import type { UploadList } from '@ferry/protocol';
import type { ServerConfig } from '../../config.ts';
import { jsonResponse } from '../../http/json-response.ts';
import type { HttpRequest, HttpResponse } from '../../http/types.ts';
import type { MetaStore } from '../../meta/meta-store.ts';
import type { UploadEvents } from '../../service/upload-events.ts';
import { type FeedLimits, type FeedSnapshot, openFeedStream } from './feed-stream.ts';
import { feedEvent, uploadSummary } from './upload-summary.ts';

/** The most uploads a list (or a snapshot) holds; `truncated` says when there were more. */
export const FEED_LIST_LIMIT = 1000;

export interface FeedProtocol {
  list(request: HttpRequest, namespace: string): Promise<HttpResponse>;
  events(request: HttpRequest, namespace: string): Promise<HttpResponse>;
}

export interface FeedProtocolOptions {
  config: Readonly<ServerConfig>;
  metaStore: MetaStore;
  events: UploadEvents;
  /** Aborted at shutdown: open streams end so in-flight requests can drain. */
  closing?: AbortSignal;
  now?: () => number;
  limits?: Partial<FeedLimits>;
}

export function createFeedProtocol(options: FeedProtocolOptions): FeedProtocol {
  const { config, metaStore, events, closing } = options;
  const now = options.now ?? Date.now;

  async function snapshot(namespace: string): Promise<FeedSnapshot> {
    const uploads = await metaStore.listInProgress(namespace, now(), FEED_LIST_LIMIT + 1);
    const truncated = uploads.length > FEED_LIST_LIMIT;
    if (truncated) uploads.length = FEED_LIST_LIMIT;
    return { uploads, truncated };
  }

  function listBody(request: HttpRequest, list: FeedSnapshot): UploadList {
    return {
      uploads: list.uploads.map((entry) => uploadSummary(request.origin, config, entry)),
      truncated: list.truncated,
    };
  }

  return {
    async list(request, namespace) {
      return jsonResponse(200, listBody(request, await snapshot(namespace)));
    },

    events(request, namespace) {
      return openFeedStream({
        namespace,
        events,
        signal: closing === undefined ? request.signal : AbortSignal.any([request.signal, closing]),
        snapshot: () => snapshot(namespace),
        snapshotEvent: (list) => ({ type: 'snapshot', ...listBody(request, list) }),
        toWire: (event) => feedEvent(request.origin, config, event, now()),
        ...(options.limits ? { limits: options.limits } : {}),
      });
    },
  };
}
