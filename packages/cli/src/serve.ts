/**
 * `ferry serve`: builds the server from the resolved settings, listens, prints the one ready line
 * and shuts down gracefully on SIGTERM / SIGINT.
 */
import { isIP } from 'node:net';
import { createFerry, type Ferry } from '@ferry/server';
import type { ServeSettings } from './serve-settings.ts';

export interface ServeIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  /** Ends the process now; used when a second signal says not to wait for the graceful close. */
  readonly exit: (code: number) => void;
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/** Extra time past the server's own shutdown budget before the process gives up waiting. */
const CLOSE_GRACE_MS = 5000;

/**
 * Runs until a signal; resolves with the exit status (0 after a clean close, 1 when listening or
 * closing failed). A `ConfigError` from the server is thrown for the caller to report (status 2).
 */
export async function runServe(settings: ServeSettings, io: ServeIo): Promise<number> {
  let stopRequested: (signal: string) => void = () => {};
  const stop = new Promise<string>((resolve) => {
    stopRequested = resolve;
  });
  let stopping = false;
  let watchdog: NodeJS.Timeout | undefined;
  const onSignal = (signal: string) => {
    if (stopping) {
      io.stderr.write(`ferry: ${signal} again while shutting down; exiting now\n`);
      io.exit(1);
      return;
    }
    stopping = true;
    // close() is bounded by shutdownTimeoutMs; this only guards against a start-up or a close that
    // never settles, so a stop request always ends the process.
    const limit = settings.server.shutdownTimeoutMs + CLOSE_GRACE_MS;
    watchdog = setTimeout(() => {
      io.stderr.write(`ferry: shutdown did not finish within ${limit} ms; exiting\n`);
      io.exit(1);
    }, limit);
    watchdog.unref();
    stopRequested(signal);
  };
  // Installed before the server starts, so a signal during start-up still closes it cleanly
  // instead of killing the process half-way through opening its stores.
  for (const signal of SIGNALS) process.on(signal, onSignal);
  try {
    const ferry = await createFerry({
      ...settings.server,
      ...(settings.web ? { webDir: settings.webDir } : {}),
    });
    if (!stopping) {
      let port: number;
      try {
        ({ port } = await ferry.listen({ host: settings.host, port: settings.port }));
      } catch (error) {
        io.stderr.write(`ferry: ${describeListenError(error, settings)}\n`);
        await ferry.close().catch(() => {});
        return 1;
      }
      const url = httpUrl(settings.host, port);
      ferry.logger.info({ url }, 'listening');
      announceAccess(ferry, settings.host);
      announceWebhooks(ferry);
      if (!stopping) io.stdout.write(`Ferry listening on ${url}\n`);
    }
    const signal = await stop;
    ferry.logger.info({ signal }, 'shutting down');
    try {
      await ferry.close();
      return 0;
    } catch (error) {
      ferry.logger.error({ err: error }, 'shutdown failed');
      return 1;
    }
  } finally {
    clearTimeout(watchdog);
    for (const signal of SIGNALS) process.off(signal, onSignal);
  }
}

/** True for addresses only this machine reaches: 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare === '::1') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare.startsWith('::ffff:127.');
}

/**
 * Says at start who may use the server: with a secret, token holders; without one, anyone who can
 * reach the address — fine on loopback (the default), loudly warned about anywhere else.
 */
function announceAccess(ferry: Ferry, host: string): void {
  if (ferry.authRequired) {
    ferry.logger.info('upload tokens required: every API request needs Authorization: Bearer <token>');
  } else if (isLoopbackHost(host)) {
    ferry.logger.info(
      { host },
      'auth is off (no --auth-secret): the API is open to anyone on this machine, and listens on a local address only',
    );
  } else {
    ferry.logger.warn(
      { host },
      'AUTH IS OFF on a non-local address: anyone who can reach it can upload, list, read and delete files. Set --auth-secret (FERRY_AUTH_SECRET), or listen on 127.0.0.1 behind a proxy that authenticates',
    );
  }
}

/** Says at start where webhooks go and which events, so an operator sees a missing receiver at once. */
function announceWebhooks(ferry: Ferry): void {
  const { hookUrl, hookEvents } = ferry.config;
  if (hookUrl === '') return;
  let shown = hookUrl;
  try {
    // The URL's path and host are enough to recognise it; credentials or tokens in it stay out of logs.
    const url = new URL(hookUrl);
    shown = `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    // normalizeConfig already refused URLs that do not parse.
  }
  ferry.logger.info({ hookUrl: shown, hookEvents }, 'webhooks are signed and posted to the hook URL');
}

/** `http://127.0.0.1:1080`, with brackets around an IPv6 address as URLs require (RFC 3986). */
export function httpUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function describeListenError(error: unknown, settings: ServeSettings): string {
  const where = `${settings.host}:${settings.port}`;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'EADDRINUSE':
      return `cannot listen on ${where}: the port is already in use (pick another with --port or FERRY_PORT, or --port 0 for any free port)`;
    case 'EACCES':
      return `cannot listen on ${where}: permission denied (ports below 1024 need extra privileges)`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${where}: ${settings.host} is not an address of this machine`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot listen on ${where}: the host name ${settings.host} does not resolve`;
    default:
      return `cannot listen on ${where}: ${error instanceof Error ? error.message : String(error)}`;
  }
}
