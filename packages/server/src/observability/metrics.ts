/** Prometheus metrics of one Ferry instance (its own registry, so several can live in one process). */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly requests: Counter<'method' | 'status'>;
  readonly requestDuration: Histogram<'method'>;
  readonly bytesReceived: Counter;
  readonly uploadsCreated: Counter;
  readonly uploadsFinished: Counter;
  readonly uploadsTerminated: Counter;
  readonly uploadsExpired: Counter;
  readonly uploadsRejected: Counter<'reason'>;
  readonly hookDeliveries: Counter<'sink' | 'result'>;
}

/** What the gauges read when scraped. */
export interface MetricSources {
  activeUploads(): Promise<number>;
  /** Hook events waiting for delivery, and the oldest one's age in seconds (0 with none). */
  hookBacklog?(): Promise<{ pending: number; oldestAgeSeconds: number }>;
}

export function createMetrics(sources: MetricSources): Metrics {
  const { activeUploads, hookBacklog } = sources;
  const registry = new Registry();
  const registers = [registry];
  const metrics: Metrics = {
    registry,
    requests: new Counter({
      name: 'ferry_http_requests_total',
      help: 'HTTP requests answered, by method and status code',
      labelNames: ['method', 'status'],
      registers,
    }),
    requestDuration: new Histogram({
      name: 'ferry_http_request_duration_seconds',
      help: 'Time from request start to the end of the response, by method',
      labelNames: ['method'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers,
    }),
    bytesReceived: new Counter({
      name: 'ferry_received_bytes_total',
      help: 'Upload bytes received and stored',
      registers,
    }),
    uploadsCreated: new Counter({ name: 'ferry_uploads_created_total', help: 'Uploads created', registers }),
    uploadsFinished: new Counter({
      name: 'ferry_uploads_finished_total',
      help: 'Uploads finished',
      registers,
    }),
    uploadsTerminated: new Counter({
      name: 'ferry_uploads_terminated_total',
      help: 'Uploads terminated by a client',
      registers,
    }),
    uploadsExpired: new Counter({
      name: 'ferry_uploads_expired_total',
      help: 'Unfinished uploads removed by the expiry sweeper',
      registers,
    }),
    uploadsRejected: new Counter({
      name: 'ferry_uploads_rejected_total',
      help: 'Uploads refused and deleted when they finished, by reason (type: a content type the allow-list does not allow; hook: the app refused it; sha256: not the declared digest)',
      labelNames: ['reason'],
      registers,
    }),
    hookDeliveries: new Counter({
      name: 'ferry_hook_deliveries_total',
      help: 'Attempts to deliver hook events, by sink (app, webhook) and result (delivered, failed)',
      labelNames: ['sink', 'result'],
      registers,
    }),
  };
  if (hookBacklog !== undefined) {
    let last: Promise<{ pending: number; oldestAgeSeconds: number }> | undefined;
    // One read per scrape serves both gauges.
    const read = () => {
      last ??= hookBacklog().finally(() => setImmediate(() => (last = undefined)));
      return last;
    };
    new Gauge({
      name: 'ferry_hook_events_pending',
      help: 'Hook events queued in the outbox, not delivered yet',
      registers,
      async collect() {
        this.set((await read()).pending);
      },
    });
    new Gauge({
      name: 'ferry_hook_oldest_pending_seconds',
      help: 'Age of the oldest hook event not delivered yet (0 with none): alert when it grows',
      registers,
      async collect() {
        this.set((await read()).oldestAgeSeconds);
      },
    });
  }
  new Gauge({
    name: 'ferry_uploads_active',
    help: 'Unfinished uploads currently recorded',
    registers,
    async collect() {
      this.set(await activeUploads());
    },
  });
  return metrics;
}
