/**
 * Which API new files go over, remembered in this browser (localStorage) so that a reload shows
 * the same choice, and the endpoints of both on this origin (`ferry serve`'s default paths).
 */
import type { Protocol } from '@ferry/client';

/** tus creation URL and parts endpoint, relative to the page. */
export const ENDPOINTS: Readonly<Record<Protocol, string>> = Object.freeze({
  parts: '/uploads/',
  tus: '/files/',
});

export const PROTOCOLS: readonly Protocol[] = ['parts', 'tus'];

export const PROTOCOL_NAMES: Readonly<Record<Protocol, string>> = Object.freeze({
  parts: 'Parts API',
  tus: 'tus 1.0',
});

const KEY = 'ferry.protocol';

export function savedProtocol(): Protocol {
  try {
    return globalThis.localStorage?.getItem(KEY) === 'tus' ? 'tus' : 'parts';
  } catch {
    // Storage blocked (some private modes): the default.
    return 'parts';
  }
}

export function saveProtocol(protocol: Protocol): void {
  try {
    globalThis.localStorage?.setItem(KEY, protocol);
  } catch {
    // Not remembered; the choice still holds until the page is closed.
  }
}
