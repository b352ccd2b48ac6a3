/**
 * Progress output shared by `ferry upload` and `ferry download`: a line redrawn in place on a
 * terminal, a plain line every few seconds otherwise (logs, CI), or one JSON object per line with
 * `--json` (for scripts).
 */
import { formatSize } from './units.ts';

export type OutputMode = 'tty' | 'plain' | 'json';

export interface ProgressSample {
  label: string;
  done: number;
  total: number;
  /** Bytes per second. */
  speed: number;
}

export function outputModeOf(stream: { isTTY?: boolean }, json: boolean): OutputMode {
  if (json) return 'json';
  return stream.isTTY === true ? 'tty' : 'plain';
}

const PLAIN_EVERY_MS = 5000;
const BAR_WIDTH = 24;

export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

export function describeProgress(sample: ProgressSample): string {
  const fraction = sample.total > 0 ? Math.min(1, sample.done / sample.total) : 1;
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const eta = sample.speed > 0 ? formatEta((sample.total - sample.done) / sample.speed) : '--:--';
  return `${percent} ${formatSize(sample.done)} of ${formatSize(sample.total)}, ${formatSize(Math.round(sample.speed))}/s, ETA ${eta}`;
}

export function progressBar(fraction: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
}

/** Writes progress in the chosen mode; `line` redraws, `done` ends a redrawn line. */
export function createProgressWriter(out: { write(text: string): unknown }, mode: OutputMode) {
  let lastPlain = 0;
  let drawn = false;
  return {
    update(samples: readonly ProgressSample[], force = false): void {
      if (mode === 'json') return;
      if (mode === 'plain') {
        const now = Date.now();
        if (!force && now - lastPlain < PLAIN_EVERY_MS) return;
        lastPlain = now;
        for (const sample of samples) out.write(`${sample.label}: ${describeProgress(sample)}\n`);
        return;
      }
      const lines = samples.map((sample) => {
        const fraction = sample.total > 0 ? sample.done / sample.total : 1;
        return `${progressBar(fraction)} ${describeProgress(sample)}  ${sample.label}`;
      });
      // Move up over the block drawn last time, then redraw it.
      if (drawn && samples.length > 1) out.write(`\u001b[${samples.length - 1}A`);
      out.write(lines.map((line) => `\r\u001b[2K${line}`).join('\n'));
      drawn = true;
    },
    end(): void {
      if (mode === 'tty' && drawn) out.write('\n');
      drawn = false;
    },
    json(value: unknown): void {
      if (mode === 'json') out.write(`${JSON.stringify(value)}\n`);
    },
  };
}
