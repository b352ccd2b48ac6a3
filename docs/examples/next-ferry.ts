/**
 * The one Ferry instance of a Next.js app (in an app: `lib/ferry.ts`). A route file may only export
 * route fields (GET, POST, runtime, …), so the instance lives here, where other server code can
 * reach it too (for `ferry.close()` or `ferry.service`).
 *
 * Kept on `globalThis`: `next dev` re-evaluates modules on every change, and two instances on the
 * same data directory would each hold their own locks.
 */
import { createFerry, type Ferry, type LogLevel } from '@ferry/server';

const shared = globalThis as typeof globalThis & { ferryInstance?: Promise<Ferry> };

// The app (not the library) reads its environment.
shared.ferryInstance ??= createFerry({
  dataDir: process.env['FERRY_DATA_DIR'] ?? './ferry-data',
  // Must be the URL path of the route file below (app/files/[[...path]]/route.ts).
  basePath: '/files/',
  logLevel: (process.env['FERRY_LOG_LEVEL'] ?? 'info') as LogLevel,
  // Next usually runs behind a proxy (Vercel, nginx): build upload URLs from X-Forwarded-*.
  trustProxy: process.env['FERRY_TRUST_PROXY'] === 'true',
});

export const ferry: Ferry = await shared.ferryInstance;
