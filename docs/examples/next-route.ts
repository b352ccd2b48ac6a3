/**
 * A Next.js App Router route handler: in an app this file is `app/files/[[...path]]/route.ts`, so
 * it receives `/files` and everything under `/files/` — the tus endpoint and every upload URL.
 * `ferry.fetch` takes the web `Request` Next passes and returns a `Response`.
 */
import { ferry } from './next-ferry.ts';

// Ferry streams bodies to the local disk and SQLite: it needs the Node.js runtime, not Edge.
export const runtime = 'nodejs';

type RouteHandler = (request: Request) => Promise<Response>;

export const GET: RouteHandler = ferry.fetch;
export const HEAD: RouteHandler = ferry.fetch;
export const POST: RouteHandler = ferry.fetch;
export const PATCH: RouteHandler = ferry.fetch;
export const DELETE: RouteHandler = ferry.fetch;
export const OPTIONS: RouteHandler = ferry.fetch;
