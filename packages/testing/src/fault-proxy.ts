/**
 * A loopback TCP proxy that emulates a bad network between an HTTP client and a server: cuts,
 * stalls, injected error responses, latency, bandwidth limits and a TCP-like window, all in user
 * space (no netem needed). Bytes pass unchanged and in order unless a fault says otherwise.
 * docs/fault-proxy.md describes every option and how the long-link emulation works.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { type ConnectionHost, type MutableStats, ProxyConnection } from './fault-proxy-connection.ts';
import { type ActiveRules, activateRules, type FaultRules } from './fault-proxy-rules.ts';

export type { RequestHead } from './fault-proxy-http.ts';
export type {
  FaultRules,
  InjectedResponse,
  InjectedStall,
  RequestMatch,
  RequestSelector,
} from './fault-proxy-rules.ts';

export interface FaultProxyOptions {
  /** Origin of the server behind the proxy, e.g. `http://127.0.0.1:1080`. Only `http:`. */
  target: string;
  /** Address to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port to listen on. Default 0: any free port. */
  port?: number;
  /** Faults from the start. Default: none (a transparent proxy). */
  faults?: FaultRules;
}

/** Counters since the start or the last `resetStats()`. */
export interface FaultProxyStats {
  /** Client connections accepted. */
  readonly connections: number;
  /** Client connections open now (not reset by `resetStats`). */
  readonly openConnections: number;
  /** Request heads parsed on client connections (injected and stalled ones included). */
  readonly requests: number;
  /** Bytes read from clients, dropped ones included. */
  readonly bytesFromClient: number;
  /** Bytes written to server sockets: what went through towards the server. */
  readonly bytesToServer: number;
  /** The part of `bytesToServer` that was request bodies (chunked framing included). */
  readonly bodyBytesToServer: number;
  readonly bytesFromServer: number;
  /** Bytes written to client sockets, injected responses included. */
  readonly bytesToClient: number;
  readonly cuts: number;
  readonly stalls: number;
  readonly injectedResponses: number;
  /** Connections to the target that failed before connecting (the client was reset). */
  readonly serverConnectErrors: number;
}

export interface FaultProxy {
  /** `http://HOST:PORT` of the proxy: clients use it in place of the target's origin. */
  readonly url: string;
  readonly port: number;
  /** A snapshot of the counters. */
  readonly stats: FaultProxyStats;
  /** Replaces the rules, for open connections too; rule counters and the cut count start over. */
  setFaults(rules: FaultRules): void;
  resetStats(): void;
  /** Stops listening and destroys every open connection; resolves when all are closed. */
  close(): Promise<void>;
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = parseTarget(options.target);
  const proxy = new FaultProxyServer(target, activateRules(options.faults ?? {}));
  await proxy.listen(options.host ?? '127.0.0.1', options.port ?? 0);
  return proxy;
}

function zeroStats(openConnections: number): MutableStats {
  return {
    connections: 0,
    openConnections,
    requests: 0,
    bytesFromClient: 0,
    bytesToServer: 0,
    bodyBytesToServer: 0,
    bytesFromServer: 0,
    bytesToClient: 0,
    cuts: 0,
    stalls: 0,
    injectedResponses: 0,
    serverConnectErrors: 0,
  };
}

class FaultProxyServer implements FaultProxy {
  readonly #target: { host: string; port: number };
  readonly #server: Server;
  readonly #connections = new Set<ProxyConnection>();
  #rules: ActiveRules;
  readonly #stats = zeroStats(0);
  /** Counted client→server bytes of all connections, and where the next `cutEveryBytes` cut falls. */
  #sharedBytes = 0;
  #nextCut: number;
  #url = '';
  #port = 0;
  #closing: Promise<void> | undefined;
  /** What every connection sees of the proxy. */
  readonly #host: ConnectionHost;

  constructor(target: { host: string; port: number }, rules: ActiveRules) {
    this.#target = target;
    this.#rules = rules;
    this.#nextCut = rules.nextCutBoundary(0);
    const currentRules = () => this.#rules;
    this.#host = {
      get rules() {
        return currentRules();
      },
      stats: this.#stats,
      bytesUntilSharedCut: () => this.#nextCut - this.#sharedBytes,
      countSharedBytes: (bytes) => {
        this.#sharedBytes += bytes;
        while (this.#sharedBytes >= this.#nextCut) this.#nextCut = this.#rules.nextCutBoundary(this.#nextCut);
      },
      release: (connection) => {
        if (this.#connections.delete(connection)) this.#stats.openConnections -= 1;
      },
    };
    // Half-open connections are forwarded as such: an end from one side reaches the other after the
    // bytes before it.
    this.#server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.#accept(socket));
    // A failed accept (too many open files, say) loses that connection only; it must not crash the
    // test process. Errors while starting to listen still reject `listen`.
    this.#server.on('error', () => {});
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        const address = this.#server.address();
        if (address === null || typeof address === 'string') {
          reject(new Error('fault proxy: listening on a pipe is not supported'));
          return;
        }
        this.#port = address.port;
        const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
        this.#url = `http://${shownHost}:${address.port}`;
        resolve();
      });
    });
  }

  get url(): string {
    return this.#url;
  }

  get port(): number {
    return this.#port;
  }

  get stats(): FaultProxyStats {
    return Object.freeze({ ...this.#stats });
  }

  setFaults(rules: FaultRules): void {
    this.#rules = activateRules(rules);
    this.#sharedBytes = 0;
    this.#nextCut = this.#rules.nextCutBoundary(0);
    for (const connection of this.#connections) connection.refresh();
  }

  resetStats(): void {
    // Connections keep writing into the stats object they hold, so it is zeroed in place.
    Object.assign(this.#stats, zeroStats(this.#connections.size));
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      const listenerClosed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      const connections = [...this.#connections];
      for (const connection of connections) connection.destroy();
      await Promise.all([listenerClosed, ...connections.map((connection) => connection.closed)]);
    })();
    return this.#closing;
  }

  #accept(socket: Socket): void {
    if (this.#closing !== undefined) {
      socket.destroy();
      return;
    }
    this.#stats.connections += 1;
    this.#stats.openConnections += 1;
    this.#connections.add(new ProxyConnection(this.#host, socket, this.#target));
  }
}

function parseTarget(target: string): { host: string; port: number } {
  const url = new URL(target);
  if (url.protocol !== 'http:')
    throw new TypeError(`fault proxy: target must be an http: origin, got ${target}`);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port: url.port === '' ? 80 : Number(url.port) };
}
