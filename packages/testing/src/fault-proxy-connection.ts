/**
 * One client connection through the fault proxy and its own connection to the server: two lanes,
 * the request parser on the client's bytes, and the faults that end or freeze the pair.
 *
 * Faults take effect where the link would show them: a cut or a stall travels down the
 * client→server lane as a marker and happens when the bytes before it have reached the server, so
 * the server receives exactly the bytes up to the cut.
 */
import { connect, type Socket } from 'node:net';
import { type RequestHead, type RequestPiece, RequestStreamParser } from './fault-proxy-http.ts';
import { Lane, type LaneMarker } from './fault-proxy-lane.ts';
import {
  type ActiveRules,
  type InjectedResponse,
  injectedResponseBytes,
  matches,
} from './fault-proxy-rules.ts';

export interface MutableStats {
  connections: number;
  openConnections: number;
  requests: number;
  bytesFromClient: number;
  bytesToServer: number;
  bodyBytesToServer: number;
  bytesFromServer: number;
  bytesToClient: number;
  cuts: number;
  stalls: number;
  injectedResponses: number;
  serverConnectErrors: number;
}

/** What a connection needs from the proxy. */
export interface ConnectionHost {
  readonly rules: ActiveRules;
  readonly stats: MutableStats;
  /** Client→server bytes that may still pass, counting every connection, before `cutEveryBytes` cuts. */
  bytesUntilSharedCut(): number;
  countSharedBytes(bytes: number): void;
  release(connection: ProxyConnection): void;
}

/** How long a peer gets to close by itself (after an injected response or a cut) before it is dropped. */
const LINGER_MS = 2000;

export class ProxyConnection {
  /** Settles when both sockets are closed. */
  readonly closed: Promise<void>;
  readonly #host: ConnectionHost;
  readonly #client: Socket;
  readonly #server: Socket;
  readonly #up: Lane;
  readonly #down: Lane;
  readonly #parser = new RequestStreamParser();
  /** A cut, stall or injected response is on its way: the client's further bytes are dropped. */
  #doomed = false;
  #answered = false;
  #stalled = false;
  #serverConnected = false;
  /** Whether the bytes being read count for the byte-counting faults (`match`). */
  #scoped: boolean;
  /** Counted client→server bytes of this connection. */
  #countedBytes = 0;
  /** Body bytes forwarded of the current request, and where a request-keyed stall begins. */
  #bodyBytes = 0;
  #stallAtBodyBytes: number | undefined;
  #linger: NodeJS.Timeout | undefined;
  #openSockets = 2;
  #resolveClosed!: () => void;

  constructor(host: ConnectionHost, client: Socket, target: { host: string; port: number }) {
    this.#host = host;
    this.#client = client;
    this.#scoped = host.rules.match === undefined;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    const stats = host.stats;
    const server = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    this.#server = server;
    this.#up = new Lane({
      source: client,
      dest: server,
      settings: () => host.rules.up,
      onDelivered: (bytes, body) => {
        stats.bytesToServer += bytes;
        if (body) stats.bodyBytesToServer += bytes;
      },
      onMarker: (marker) => this.#onUpMarker(marker),
    });
    this.#down = new Lane({
      source: server,
      dest: client,
      settings: () => host.rules.down,
      onDelivered: (bytes) => {
        stats.bytesToClient += bytes;
      },
      onMarker: (marker) => this.#onDownMarker(marker),
    });
    client.setNoDelay(true);
    client.on('data', (chunk: Buffer) => this.#onClientData(chunk));
    client.on('end', () => this.#onClientEnd());
    server.on('connect', () => {
      this.#serverConnected = true;
    });
    server.on('data', (chunk: Buffer) => {
      stats.bytesFromServer += chunk.length;
      if (!this.#answered) this.#down.push(chunk, false);
    });
    server.on('end', () => {
      if (this.#stalled) this.destroy();
      else if (!this.#answered) this.#down.mark('end');
    });
    for (const socket of [client, server]) {
      // An error ends this connection only; the peer learns of it the way a broken link shows it.
      socket.on('error', () => {
        if (socket === server && !this.#serverConnected) stats.serverConnectErrors += 1;
        this.destroy(true);
      });
      socket.on('close', () => this.#onSocketClose());
    }
  }

  /** Rules changed: let the lanes look at them again. */
  refresh(): void {
    this.#up.pump();
    this.#down.pump();
  }

  /** Ends both sockets now; `reset` sends an RST where the socket allows. */
  destroy(reset = false): void {
    this.#up.dispose();
    this.#down.dispose();
    for (const socket of [this.#client, this.#server]) {
      if (socket.destroyed) continue;
      if (reset) resetSocket(socket);
      else socket.destroy();
    }
  }

  #onClientData(chunk: Buffer): void {
    this.#host.stats.bytesFromClient += chunk.length;
    if (this.#doomed) return;
    this.#parser.push(chunk, this.#onPiece);
  }

  #onClientEnd(): void {
    if (this.#stalled) {
      this.destroy();
      return;
    }
    if (this.#doomed) return;
    this.#parser.finish(this.#onPiece);
    if (!this.#doomed) this.#up.mark('end');
  }

  readonly #onPiece = (piece: RequestPiece): void => {
    if (this.#doomed) return;
    if (piece.kind === 'head') {
      this.#onHead(piece.head, piece.bytes);
    } else {
      this.#admit(piece.bytes, piece.kind === 'body');
    }
  };

  #onHead(head: RequestHead, bytes: Buffer): void {
    const rules = this.#host.rules;
    this.#host.stats.requests += 1;
    this.#scoped = matches(rules.match, head);
    this.#bodyBytes = 0;
    this.#stallAtBodyBytes = undefined;
    const decision = rules.decide(head);
    if (decision.kind === 'respond') {
      this.#answer(decision.response, head);
      return;
    }
    if (decision.kind === 'stall') {
      if (decision.afterBodyBytes === undefined) {
        this.#doom('stall');
        return;
      }
      this.#stallAtBodyBytes = decision.afterBodyBytes;
    }
    this.#admit(bytes, false);
    if (this.#stallAtBodyBytes === 0 && !this.#doomed) this.#doom('stall');
  }

  /**
   * Queues client bytes for the server, splitting them where a byte-counting fault fires so the
   * server receives exactly the bytes before it.
   */
  #admit(bytes: Buffer, body: boolean): void {
    const rules = this.#host.rules;
    let rest = bytes;
    while (rest.length > 0 && !this.#doomed) {
      let cutAt = Number.POSITIVE_INFINITY;
      let stallAt = Number.POSITIVE_INFINITY;
      if (this.#scoped) {
        cutAt = this.#host.bytesUntilSharedCut();
        if (rules.cutAfterBytes !== undefined)
          cutAt = Math.min(cutAt, rules.cutAfterBytes - this.#countedBytes);
        if (rules.stallAfterBytes !== undefined) stallAt = rules.stallAfterBytes - this.#countedBytes;
      }
      if (body && this.#stallAtBodyBytes !== undefined) {
        stallAt = Math.min(stallAt, this.#stallAtBodyBytes - this.#bodyBytes);
      }
      const take = Math.max(0, Math.min(rest.length, cutAt, stallAt));
      if (take > 0) {
        this.#up.push(rest.subarray(0, take), body);
        if (this.#scoped) {
          this.#host.countSharedBytes(take);
          this.#countedBytes += take;
        }
        if (body) this.#bodyBytes += take;
        rest = rest.subarray(take);
      }
      // A cut wins a tie with a stall: both stop the forwarding, and the cut ends the connection too.
      if (cutAt <= take) this.#doom('cut');
      else if (stallAt <= take) this.#doom('stall');
    }
  }

  #doom(fault: 'cut' | 'stall'): void {
    this.#doomed = true;
    this.#up.holdSource();
    this.#up.mark(fault);
  }

  #answer(response: InjectedResponse, head: RequestHead): void {
    this.#doomed = true;
    this.#answered = true;
    this.#host.stats.injectedResponses += 1;
    // Keep reading (and dropping) what the client still sends, so it is not reset before it reads
    // the answer: the lingering close of RFC 9112 §9.6.
    this.#up.releaseSource();
    this.#down.push(injectedResponseBytes(response, head.method), false);
    this.#down.mark('answered');
  }

  #onUpMarker(marker: LaneMarker): void {
    const server = this.#server;
    if (marker === 'end') {
      if (server.writable) server.end();
    } else if (marker === 'cut') {
      this.#host.stats.cuts += 1;
      this.#up.dispose();
      this.#down.dispose();
      resetSocket(this.#client);
      // The server must receive every byte before the cut: a reset would drop what still waits in
      // the kernel's send buffer. So it gets them and then the end of the stream, mid-request, which
      // it sees as an aborted request just as it would see a reset.
      server.resume();
      if (server.writable) server.end();
      this.#linger = setTimeout(() => server.destroy(), LINGER_MS);
      this.#linger.unref();
    } else if (marker === 'stall') {
      this.#host.stats.stalls += 1;
      this.#stalled = true;
      this.#up.freeze();
      this.#down.freeze();
      this.#client.pause();
      server.pause();
    }
  }

  #onDownMarker(marker: LaneMarker): void {
    if (marker === 'end') {
      if (this.#client.writable) this.#client.end();
    } else if (marker === 'answered') {
      this.#client.end();
      this.#server.destroy();
      this.#linger = setTimeout(() => this.#client.destroy(), LINGER_MS);
      this.#linger.unref();
    }
  }

  #onSocketClose(): void {
    this.#openSockets -= 1;
    if (this.#openSockets > 0) {
      // A stalled link notices its peer leave only here; the other side goes too.
      if (this.#stalled) this.destroy();
      return;
    }
    this.#up.dispose();
    this.#down.dispose();
    if (this.#linger !== undefined) clearTimeout(this.#linger);
    this.#host.release(this);
    this.#resolveClosed();
  }
}

function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
