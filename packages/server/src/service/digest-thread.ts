/**
 * Digests (SHA-256, SHA-1, MD5) computed on a worker thread, so hashing the bytes of uploads never
 * holds up the event loop that receives them.
 *
 * `update` copies the bytes into a 1 MiB batch buffer at once (the caller may reuse its chunk right
 * away); a batch goes to the worker when its buffer is full or when a result is asked for (a batch
 * sent half-empty would spend a whole buffer of the budget on a few bytes). Operations reach the worker in the order they were made, so `copy` and
 * `digest` see exactly the bytes given before them. Batch buffers are transferred, not copied, and
 * come back for reuse; at most `maxBufferBytes` are out at once. When the worker falls that far
 * behind, `update` waits for it synchronously: the event loop then loses what hashing inline would
 * have cost, and memory stays bounded.
 *
 * One thread per process (`sharedDigestThread`) serves every server in it; it does not keep the
 * process alive while no result is awaited. `inlineDigests` has the same interface on this thread.
 */
import { createHash, type Hash } from 'node:crypto';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';

export type DigestAlgorithm = 'sha256' | 'sha1' | 'md5';

/** One running digest. Use `digest` or `discard` once; after either, the digest is spent. */
export interface ThreadDigest {
  /** Adds bytes; they are copied before this returns. */
  update(chunk: Uint8Array): void;
  /** A new digest continuing from this one's current state; this one goes on unchanged. */
  copy(): ThreadDigest;
  digest(): Promise<Buffer>;
  /** Frees the digest without a result. */
  discard(): void;
}

export interface DigestThread {
  create(algorithm: DigestAlgorithm): ThreadDigest;
  /** Stops the worker; digests not yet answered reject. The next `create` starts a new one. */
  close(): Promise<void>;
}

export interface DigestThreadOptions {
  /** Bytes per batch buffer. Default 1 MiB. */
  batchBytes?: number;
  /** Batch buffers out at once, in bytes. Default 16 MiB. */
  maxBufferBytes?: number;
}

/** Operation codes shared with digest-worker.ts. */
export const Op = {
  Create: 0,
  /** [Update, ids, offset, length]: bytes of the batch buffer into each digest of `ids`. */
  Update: 1,
  Copy: 2,
  /** [Digest, id, request]: the result goes back as `request`. */
  Digest: 3,
  Discard: 4,
} as const;

type UpdateOperation = [typeof Op.Update, number[], number, number];

export type Operation =
  | [typeof Op.Create, number, DigestAlgorithm]
  | UpdateOperation
  | [typeof Op.Copy, number, number]
  | [typeof Op.Digest, number, number]
  | [typeof Op.Discard, number];

export interface Batch {
  ops: Operation[];
  buffer: ArrayBuffer | undefined;
}

export interface DigestResult {
  request: number;
  digest?: Uint8Array;
  error?: string;
}

// The worker is a sibling module: `.ts` when running from sources, `.js` once compiled.
const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './digest-worker.ts' : './digest-worker.js',
  import.meta.url,
);

const MiB = 1024 * 1024;
/** How long `update` waits for the worker in one step, and in all before it takes more memory. */
const WAIT_STEP_MS = 100;
const WAIT_LIMIT_MS = 10_000;

class DigestThreadFailed extends Error {
  constructor(message: string) {
    super(`the hashing thread failed: ${message}`);
    this.name = 'DigestThreadFailed';
  }
}

class SpentDigest extends Error {
  constructor() {
    super('this digest was already finished or discarded');
    this.name = 'SpentDigest';
  }
}

interface Connection {
  worker: Worker;
  /** Batch buffers come back here, read synchronously when one is needed. */
  returns: MessagePort;
  /** [0]: batches the worker finished, for `Atomics.wait`. */
  finished: Int32Array;
  failure: Error | undefined;
}

class WorkerDigestThread implements DigestThread {
  readonly #batchBytes: number;
  readonly #maxBuffers: number;
  #connection: Connection | undefined;
  #nextId = 1;
  #nextRequest = 1;
  readonly #pending = new Map<
    number,
    { resolve: (digest: Buffer) => void; reject: (error: Error) => void }
  >();
  #ops: Operation[] = [];
  #buffer: Uint8Array | undefined;
  #used = 0;
  #scheduled = false;
  #free: ArrayBuffer[] = [];
  #allocated = 0;
  /** The chunk of the latest update, when its bytes are the batch's last operation (one copy for two digests). */
  #last: { chunk: Uint8Array; op: UpdateOperation } | undefined;
  readonly #registry = new FinalizationRegistry<{ connection: Connection; id: number }>(
    ({ connection, id }) => {
      if (this.#connection === connection) this.#push([Op.Discard, id]);
    },
  );

  constructor(options: DigestThreadOptions = {}) {
    this.#batchBytes = options.batchBytes ?? MiB;
    this.#maxBuffers = Math.max(2, Math.floor((options.maxBufferBytes ?? 16 * MiB) / this.#batchBytes));
  }

  create(algorithm: DigestAlgorithm): ThreadDigest {
    const connection = this.#connect();
    const id = this.#nextId++;
    this.#push([Op.Create, id, algorithm]);
    return this.#handle(connection, id);
  }

  async close(): Promise<void> {
    const connection = this.#connection;
    if (connection === undefined) return;
    this.#flush();
    this.#drop(connection, new DigestThreadFailed('closed'));
    await connection.worker.terminate();
  }

  #handle(connection: Connection, id: number): ThreadDigest {
    let spent = false;
    const live = () => {
      if (spent) throw new SpentDigest();
      if (connection.failure !== undefined) throw connection.failure;
    };
    const handle: ThreadDigest = {
      update: (chunk) => {
        live();
        this.#update(id, chunk);
      },
      copy: () => {
        live();
        const copy = this.#nextId++;
        this.#push([Op.Copy, id, copy]);
        return this.#handle(connection, copy);
      },
      digest: () => {
        try {
          live();
        } catch (error) {
          return Promise.reject(error);
        }
        spent = true;
        this.#registry.unregister(handle);
        const request = this.#nextRequest++;
        const result = new Promise<Buffer>((resolve, reject) =>
          this.#pending.set(request, { resolve, reject }),
        );
        this.#push([Op.Digest, id, request]);
        this.#flush();
        connection.worker.ref();
        return result;
      },
      discard: () => {
        if (spent) return;
        spent = true;
        this.#registry.unregister(handle);
        if (this.#connection === connection) this.#push([Op.Discard, id]);
      },
    };
    this.#registry.register(handle, { connection, id }, handle);
    return handle;
  }

  #connect(): Connection {
    if (this.#connection !== undefined) return this.#connection;
    const channel = new MessageChannel();
    const finished = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(WORKER_URL, {
      workerData: { returns: channel.port2, finished },
      transferList: [channel.port2],
      // The process's flags are inherited, except `--input-type` (of `node -e`), which a worker refuses.
      ...(process.execArgv.some((flag) => flag.startsWith('--input-type'))
        ? { execArgv: process.execArgv.filter((flag) => !flag.startsWith('--input-type')) }
        : {}),
    });
    const connection: Connection = { worker, returns: channel.port1, finished, failure: undefined };
    worker.on('message', (result: DigestResult) => {
      const waiting = this.#pending.get(result.request);
      if (waiting === undefined) return;
      this.#pending.delete(result.request);
      if (this.#pending.size === 0) worker.unref();
      if (result.digest !== undefined) waiting.resolve(Buffer.from(result.digest));
      else waiting.reject(new DigestThreadFailed(result.error ?? 'no digest'));
    });
    worker.on('error', (error) => this.#drop(connection, new DigestThreadFailed(error.message)));
    worker.on('exit', (code) => this.#drop(connection, new DigestThreadFailed(`exited with code ${code}`)));
    // After the listeners (adding one refs a port again): nothing here keeps the process alive.
    channel.port1.unref();
    worker.unref();
    this.#connection = connection;
    return connection;
  }

  /** Forgets a connection that failed or closed: its digests are spent, its results reject. */
  #drop(connection: Connection, failure: Error): void {
    if (this.#connection !== connection) return;
    connection.failure = failure;
    this.#connection = undefined;
    connection.returns.close();
    for (const waiting of this.#pending.values()) waiting.reject(failure);
    this.#pending.clear();
    this.#ops = [];
    this.#buffer = undefined;
    this.#used = 0;
    this.#last = undefined;
    this.#free = [];
    this.#allocated = 0;
  }

  #update(id: number, chunk: Uint8Array): void {
    const last = this.#last;
    if (last !== undefined && last.chunk === chunk && this.#ops.at(-1) === last.op) {
      last.op[1].push(id);
      return;
    }
    this.#last = undefined;
    let at = 0;
    while (at < chunk.byteLength) {
      if (this.#buffer === undefined || this.#used === this.#buffer.byteLength) {
        this.#flush();
        this.#buffer = new Uint8Array(this.#takeBuffer());
        this.#used = 0;
      }
      const length = Math.min(chunk.byteLength - at, this.#buffer.byteLength - this.#used);
      this.#buffer.set(chunk.subarray(at, at + length), this.#used);
      const op: UpdateOperation = [Op.Update, [id], this.#used, length];
      this.#push(op);
      this.#used += length;
      at += length;
      if (at === chunk.byteLength && length === chunk.byteLength) this.#last = { chunk, op };
    }
    if (this.#buffer !== undefined && this.#used === this.#buffer.byteLength) this.#flush();
  }

  #push(op: Operation): void {
    this.#ops.push(op);
    // Operations without bytes (create, copy, discard) wait for the next batch, as do the bytes of
    // a buffer not yet full; a batch that only names digests goes at the next turn of the loop.
    if (!this.#scheduled && this.#buffer === undefined) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        if (this.#buffer === undefined) this.#flush();
      });
    }
  }

  #flush(): void {
    const connection = this.#connection;
    if (connection === undefined || this.#ops.length === 0) return;
    const buffer = this.#used > 0 ? this.#buffer?.buffer : undefined;
    const batch: Batch = { ops: this.#ops, buffer: buffer as ArrayBuffer | undefined };
    this.#ops = [];
    this.#last = undefined;
    if (buffer !== undefined) {
      this.#buffer = undefined;
      this.#used = 0;
      connection.worker.postMessage(batch, [buffer as ArrayBuffer]);
    } else {
      connection.worker.postMessage(batch);
    }
  }

  /** A free batch buffer: one that came back, a new one within the limit, or one waited for. */
  #takeBuffer(): ArrayBuffer {
    const connection = this.#connection;
    if (connection === undefined) throw new DigestThreadFailed('not running');
    this.#collectReturns(connection);
    const free = this.#free.pop();
    if (free !== undefined) return free;
    if (this.#allocated < this.#maxBuffers) {
      this.#allocated++;
      return new ArrayBuffer(this.#batchBytes);
    }
    const deadline = Date.now() + WAIT_LIMIT_MS;
    while (Date.now() < deadline) {
      const seen = Atomics.load(connection.finished, 0);
      this.#collectReturns(connection);
      const back = this.#free.pop();
      if (back !== undefined) return back;
      Atomics.wait(connection.finished, 0, seen, WAIT_STEP_MS);
    }
    // The worker does not answer: take more memory rather than stop the server.
    this.#allocated++;
    return new ArrayBuffer(this.#batchBytes);
  }

  #collectReturns(connection: Connection): void {
    for (;;) {
      const returned = receiveMessageOnPort(connection.returns);
      if (returned === undefined) return;
      this.#free.push(returned.message as ArrayBuffer);
    }
  }
}

class InlineDigests implements DigestThread {
  create(algorithm: DigestAlgorithm): ThreadDigest {
    return inlineDigest(createHash(algorithm));
  }

  async close(): Promise<void> {}
}

function inlineDigest(hash: Hash): ThreadDigest {
  let spent = false;
  const live = () => {
    if (spent) throw new SpentDigest();
  };
  return {
    update: (chunk) => {
      live();
      hash.update(chunk);
    },
    copy: () => {
      live();
      return inlineDigest(hash.copy());
    },
    digest: () => {
      if (spent) return Promise.reject(new SpentDigest());
      spent = true;
      return Promise.resolve(hash.digest());
    },
    discard: () => {
      spent = true;
    },
  };
}

/** A hashing thread of its own (tests, embedding with a separate budget). */
export function startDigestThread(options?: DigestThreadOptions): DigestThread {
  return new WorkerDigestThread(options);
}

/** Digests on the calling thread, with the same interface. */
export function inlineDigests(): DigestThread {
  return new InlineDigests();
}

let shared: DigestThread | undefined;

/** The process's hashing thread, started on first use. */
export function sharedDigestThread(): DigestThread {
  shared ??= new WorkerDigestThread();
  return shared;
}
