/**
 * The small request/response shape every protocol handler speaks. The node:http handler and the
 * fetch adapter both translate to and from it, so a protocol is written once and runs in both.
 */
import type { Readable } from 'node:stream';
import type { ByteSource } from '../stores/data-store.ts';

export interface HttpRequest {
  /** Upper-case method, after `X-HTTP-Method-Override` was applied. */
  readonly method: string;
  /** Raw path (not percent-decoded), without the query string. */
  readonly path: string;
  /** The raw query string without `?`, or '' */
  readonly query: string;
  /** A header by its lower-case name; repeated headers are joined with ", ". */
  header(name: string): string | undefined;
  /** The request body (read at most once). */
  readonly body: ByteSource;
  /** A trailer field by its lower-case name, once the body has ended (node:http only). */
  trailer(name: string): string | undefined;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
  /** The origin the client used (scheme://host), as trusted by the configuration. */
  readonly origin: string;
  readonly requestId: string;
  /**
   * The client's address the rate limit counts against (see `clientAddress`); undefined when the
   * adapter cannot know it (the fetch adapter without trusted forwarding headers).
   */
  readonly clientAddress?: string | undefined;
}

export type ResponseBody = string | Uint8Array | Readable | null;

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: ResponseBody;
}

export type RouteHandler = (request: HttpRequest) => Promise<HttpResponse>;
