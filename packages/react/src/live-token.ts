/**
 * The `token` option as the SDK gets it from the hooks: a function that reads the option passed
 * most recently. An upload that was added with one token and meets `401 ERR_TOKEN_EXPIRED` later
 * asks again and gets the token the app passes now, so handing the hook a new token (a new prop)
 * lets running uploads go on, and failed ones continue on Retry.
 */
import type { TokenOption } from '@ferry/client';

export function liveToken(read: () => TokenOption | undefined): { token?: () => Promise<string> } {
  if (read() === undefined) return {};
  return {
    token: async () => {
      const current = read();
      if (current === undefined) throw new Error('the token option was removed');
      return typeof current === 'string' ? current : current();
    },
  };
}
