/**
 * Upload tokens (docs/security.md): a bearer token sent as `Authorization: Bearer <token>` on every
 * request to the Ferry server — never to a presigned bucket URL. A function given as `token` is
 * asked once, and once more whenever the server says the token it got has expired; requests that
 * saw the same token refused share that one call.
 */
import { ClientError } from './errors.ts';
import type { HttpResponse } from './seams.ts';

/** A token, or a function that returns a fresh one (asked again when the server says it expired). */
export type TokenOption = string | (() => string | Promise<string>);

/**
 * The server codes that refuse a token or what it allows (docs/errors.md). A refused file type is
 * not one of them: the server answers it for the file's content, with or without a token
 * (`CONTENT_REFUSAL_CODES`).
 */
export const TOKEN_REFUSAL_CODES: readonly string[] = [
  'ERR_TOKEN_MISSING',
  'ERR_TOKEN_INVALID',
  'ERR_TOKEN_EXPIRED',
  'ERR_TOKEN_SCOPE',
  'ERR_TOKEN_MAX_SIZE',
];

export function checkTokenOption(token: unknown): void {
  if (token === undefined || typeof token === 'function') return;
  if (typeof token !== 'string' || token === '') {
    throw new ClientError('ERR_INVALID_OPTIONS', {
      message: 'token must be a non-empty string or a function returning one',
    });
  }
}

export class TokenSource {
  readonly #option: TokenOption | undefined;
  #value: string | undefined;
  #pending: Promise<string> | undefined;
  /** The last renewed token until the server accepts it: refused too, asking again cannot help. */
  #untried: string | undefined;

  constructor(option: TokenOption | undefined) {
    checkTokenOption(option);
    this.#option = option;
    if (typeof option === 'string') this.#value = option;
  }

  /** The token to send now; `undefined` when there is none (a server in open mode). */
  current(): Promise<string | undefined> {
    if (this.#value !== undefined || typeof this.#option !== 'function') return Promise.resolve(this.#value);
    return this.#ask();
  }

  /**
   * `stale` was refused as expired: a new token from the function, unless another request already
   * got one since. `undefined` when there is no function to ask (a fixed string cannot be renewed).
   */
  refresh(stale: string): Promise<string | undefined> {
    if (typeof this.#option !== 'function' || stale === this.#untried) return Promise.resolve(undefined);
    if (this.#pending !== undefined) return this.#pending;
    if (this.#value !== undefined && this.#value !== stale) return Promise.resolve(this.#value);
    this.#value = undefined;
    return this.#ask().then((token) => {
      this.#untried = token;
      // The same token again: sending it again would only be refused again.
      return token === stale ? undefined : token;
    });
  }

  /** A new run of the upload (start, resume, retry): a token refused in an earlier run may be asked for again. */
  newRun(): void {
    this.#untried = undefined;
  }

  /** The server accepted `token` (answered anything but 401 to it). */
  accepted(token: string): void {
    if (token === this.#untried) this.#untried = undefined;
  }

  #ask(): Promise<string> {
    const ask = this.#option as () => string | Promise<string>;
    this.#pending ??= (async () => {
      let token: unknown;
      try {
        token = await ask();
      } catch (error) {
        throw new ClientError('ERR_UNAUTHORIZED', {
          message: `the token function failed: ${error instanceof Error ? error.message : String(error)}`,
          cause: error,
        });
      }
      if (typeof token !== 'string' || token === '') {
        throw new ClientError('ERR_INVALID_OPTIONS', {
          message: 'the token function must return a non-empty string',
        });
      }
      this.#value = token;
      return token;
    })().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }
}

/** `Authorization` for `token`; nothing without one. */
export function authorization(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

/**
 * Whether `response` refuses the token as expired: Ferry's `ERR_TOKEN_EXPIRED`, or — an answer
 * without a body (HEAD), which cannot name its code — a 401 whose challenge says `invalid_token`
 * with an `error_description` that says it expired.
 */
export function refusedAsExpired(response: HttpResponse): boolean {
  if (response.status !== 401) return false;
  if (response.body === '') {
    const challenge = response.headers['www-authenticate'] ?? '';
    return /error="?invalid_token/i.test(challenge) && /error_description="[^"]*expired/i.test(challenge);
  }
  return /"code"\s*:\s*"ERR_TOKEN_EXPIRED"/.test(response.body);
}

/** Whether an answer with `status` and server `code` refuses the token or what it allows. */
export function isTokenRefusal(status: number, code: string | undefined): boolean {
  if (status === 401) return true;
  return (status === 403 || status === 413) && code !== undefined && TOKEN_REFUSAL_CODES.includes(code);
}
