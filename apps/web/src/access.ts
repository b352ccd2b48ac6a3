/**
 * The page's upload token (docs/security.md, "The web app"). The page that opens the app hands it
 * one in the fragment, `/#token=…` (a fragment never reaches a server or a proxy log), which is
 * read and then taken out of the address bar; an app serving its own page may put
 * `<meta name="ferry-token" content="…">` in it instead. A later `#token=…` (a `hashchange`)
 * replaces the token. It is kept in memory only.
 *
 * What the server said about it is kept too, so the page can say in plain words that the link has
 * expired, or that this server needs one: a store for `useSyncExternalStore`.
 */
import { useSyncExternalStore } from 'react';

/**
 * `open`: no token, and nothing was refused (a server in open mode, or not known yet). `held`: a
 * token the server has not refused. `needed`: no token, and the server asks for one. `expired`,
 * `refused`: the server refused the token (expired; invalid or not allowed).
 */
export type AccessState = 'open' | 'held' | 'needed' | 'expired' | 'refused';

export interface Access {
  readonly token: string | undefined;
  readonly state: AccessState;
}

/** Takes `token` out of the fragment (keeping anything else in it) and returns it. */
export function takeTokenFromFragment(): string | undefined {
  const fragment = location.hash.replace(/^#/, '');
  if (fragment === '') return undefined;
  const params = new URLSearchParams(fragment);
  const token = params.get('token');
  if (token === null) return undefined;
  params.delete('token');
  const rest = params.toString();
  history.replaceState(
    history.state,
    '',
    `${location.pathname}${location.search}${rest === '' ? '' : `#${rest}`}`,
  );
  return token === '' ? undefined : token;
}

function tokenFromMeta(): string | undefined {
  const content = document.querySelector('meta[name="ferry-token"]')?.getAttribute('content')?.trim();
  return content === undefined || content === '' ? undefined : content;
}

function initial(): Access {
  const token = takeTokenFromFragment() ?? tokenFromMeta();
  return Object.freeze({ token, state: token === undefined ? 'open' : 'held' });
}

let access: Access = initial();
const listeners = new Set<() => void>();

function set(next: Access): void {
  if (next.token === access.token && next.state === access.state) return;
  access = Object.freeze(next);
  for (const listener of [...listeners]) listener();
}

globalThis.addEventListener?.('hashchange', () => {
  const token = takeTokenFromFragment();
  if (token !== undefined) set({ token, state: 'held' });
});

export const pageAccess = {
  subscribe(listener: () => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  getSnapshot: (): Access => access,

  /** The token now (read on every request, so a new one is used at once). */
  token: (): string | undefined => access.token,

  /**
   * The server refused `token` (the one a request carried) with `code`. A refusal of a token that
   * was replaced since changes nothing; the other codes (a limit of the token) are not about access.
   */
  refused(token: string | undefined, code: string | undefined): void {
    if (token !== access.token) return;
    if (code === 'ERR_TOKEN_EXPIRED') set({ token, state: 'expired' });
    else if (code === 'ERR_TOKEN_MISSING' && token === undefined) set({ token, state: 'needed' });
    else if (code === 'ERR_TOKEN_INVALID' || code === 'ERR_TOKEN_MISSING') set({ token, state: 'refused' });
  },

  /** The server accepted `token`: whatever it refused before is over. */
  accepted(token: string | undefined): void {
    if (token === access.token && token !== undefined) set({ token, state: 'held' });
  },
};

/** `Authorization` for the page's token; nothing without one. */
export function authorizationHeader(): Record<string, string> {
  const token = access.token;
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

/** A download link that works with this page's token: `?token=` only when there is one. */
export function withToken(href: string, token: string | undefined): string {
  if (token === undefined) return href;
  return `${href}${href.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

export function useAccess(): Access {
  return useSyncExternalStore(pageAccess.subscribe, pageAccess.getSnapshot, pageAccess.getSnapshot);
}
