// Markdown for the client section: its targets, one table per link, and every run.
import type { ClientKind } from '../client/upload-client.ts';
import {
  type ClientCell,
  type ClientLinkResult,
  type ClientSample,
  type ClientSectionResult,
  goodClientSamples,
  type LinkId,
} from './results.ts';
import { max, median, min } from './stats.ts';
import { formatBytes, GiB } from './workloads.ts';

/** Goals for the client section: Ferry parts over a reference client, per link. */
export const clientTargets: Record<LinkId, { reference: ClientKind; name: string; goal: number }> = {
  'long-link': { reference: 'tusjs', name: 'tus-js-client defaults', goal: 2.5 },
  loopback: { reference: 'raw', name: "the server's single-stream ingest", goal: 0.9 },
};

const partsKinds: readonly ClientKind[] = ['ferry-parts-4', 'ferry-parts-8'];

function num(value: number): string {
  if (!Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function spread(values: number[]): string {
  if (values.length === 0) return '–';
  if (values.length === 1) return num(values[0]!);
  return `${num(median(values))} (${num(min(values))}–${num(max(values))})`;
}

function times(value: number): string {
  return Number.isFinite(value) ? `${num(value)}×` : '–';
}

function cellOf(link: ClientLinkResult, kind: ClientKind): ClientCell | undefined {
  return link.cells.find((cell) => cell.client === kind);
}

function medianThroughput(link: ClientLinkResult, kind: ClientKind): number {
  return median(goodClientSamples(cellOf(link, kind)).map((s) => s.throughput));
}

/** Median throughput of `kind` over that of the link's reference client. */
export function clientRatio(link: ClientLinkResult, kind: ClientKind): number {
  return medianThroughput(link, kind) / medianThroughput(link, clientTargets[link.link].reference);
}

function verdict(value: number, goal: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value >= goal ? 'PASS' : '**MISS**';
}

/** Median of an optional per-run figure, '–' when no run has it. */
function optional(samples: ClientSample[], pick: (s: ClientSample) => number | undefined): string {
  const values = samples.map(pick).filter((v): v is number => v !== undefined);
  return values.length === 0 ? '–' : num(median(values));
}

/**
 * MB/s between the first body byte and the start of `complete` (or the end): the sending itself,
 * without the client's fingerprint before it and the server's check of the whole file after it.
 */
function sendingThroughput(sample: ClientSample, size: number): number {
  const sending = sample.seconds - (sample.firstByteSeconds ?? 0) - (sample.completeSeconds ?? 0);
  return sending > 0 ? size / 1e6 / sending : Number.NaN;
}

function cpuPerGiB(sample: ClientSample, size: number): number {
  return sample.clientCpuSeconds / (size / GiB);
}

export function clientTargetRows(section: ClientSectionResult): string[] {
  const rows: string[] = [];
  for (const link of section.links) {
    const target = clientTargets[link.link];
    for (const kind of partsKinds) {
      const value = clientRatio(link, kind);
      const where = link.link === 'loopback' ? 'loopback' : 'long link';
      rows.push(
        `| ${where}: ${cellOf(link, kind)?.label ?? kind} / ${target.name} | ${times(value)} | ≥ ${target.goal}× | ${verdict(value, target.goal)} |`,
      );
    }
  }
  return rows;
}

function linkTable(link: ClientLinkResult, size: number): string[] {
  const target = clientTargets[link.link];
  const longLink = link.link === 'long-link';
  const reference = cellOf(link, target.reference)?.label ?? target.reference;
  const lines = [
    `### ${link.title}`,
    '',
    `| client | MB/s median (min–max) | seconds | first byte s | complete s | MB/s while sending | × ${reference} | client CPU s per GiB | client RSS MiB start → peak | server CPU s |${longLink ? ' proxy CPU s |' : ''} other load | runs verified |`,
    `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |${longLink ? ' ---: |' : ''} ---: | --- |`,
  ];
  for (const cell of link.cells) {
    const good = goodClientSamples(cell);
    const bad = cell.samples.length - good.length;
    const retries = good.reduce((sum, s) => sum + s.retries, 0);
    lines.push(
      [
        '',
        cell.label,
        spread(good.map((s) => s.throughput)),
        num(median(good.map((s) => s.seconds))),
        optional(good, (s) => s.firstByteSeconds),
        optional(good, (s) => s.completeSeconds),
        num(median(good.map((s) => sendingThroughput(s, size)))),
        times(clientRatio(link, cell.client)),
        num(median(good.map((s) => cpuPerGiB(s, size)))),
        `${num(median(good.map((s) => s.clientStartRssMiB)))} → ${num(max(good.map((s) => s.clientPeakRssMiB)))}`,
        num(median(good.map((s) => s.serverCpuSeconds))),
        ...(longLink ? [num(median(good.map((s) => s.proxyCpuSeconds)))] : []),
        `${Math.round(100 * median(good.map((s) => s.otherLoad)))} %`,
        `${good.length} of ${cell.samples.length}${bad > 0 ? ` — **${bad} FAILED**` : ''}${retries > 0 ? ` (${retries} retried requests)` : ''}`,
        '',
      ]
        .join(' | ')
        .trim(),
    );
  }
  return lines;
}

function runTable(section: ClientSectionResult): string[] {
  const lines = [
    '| link | run | client | MB/s | seconds | first byte s | complete s | client CPU s per GiB | client peak RSS MiB | server CPU s | proxy CPU s | other load | stored file |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const link of section.links) {
    for (const cell of link.cells) {
      cell.samples.forEach((s, run) => {
        const where = link.link === 'loopback' ? 'loopback' : 'long link';
        if (!s.ok) {
          lines.push(`| ${where} | ${run + 1} | ${cell.label} | FAILED: ${s.error} | | | | | | | | | |`);
          return;
        }
        lines.push(
          `| ${where} | ${run + 1} | ${cell.label} | ${num(s.throughput)} | ${num(s.seconds)} | ` +
            `${optional([s], (x) => x.firstByteSeconds)} | ${optional([s], (x) => x.completeSeconds)} | ${num(cpuPerGiB(s, section.size))} | ` +
            `${num(s.clientPeakRssMiB)} | ${num(s.serverCpuSeconds)} | ${link.link === 'loopback' ? '–' : num(s.proxyCpuSeconds)} | ` +
            `${Math.round(100 * s.otherLoad)} % | ${s.verified ? 'SHA-256 matches' : `**NOT VERIFIED**: ${s.failure}`} |`,
        );
      });
    }
  }
  return lines;
}

export function clientFailureLines(section: ClientSectionResult): string[] {
  const lines: string[] = [];
  for (const link of section.links) {
    for (const cell of link.cells) {
      cell.samples.forEach((s, run) => {
        const where = `client ${link.link} ${cell.label} run ${run + 1}`;
        if (!s.ok) lines.push(`- ${where}: run failed: ${s.error}`);
        else if (!s.verified) lines.push(`- ${where}: **stored file NOT VERIFIED** ${s.failure}`);
      });
    }
  }
  return lines;
}

export function renderClientSection(section: ClientSectionResult): string[] {
  const title = `## Client: one ${formatBytes(section.size)} upload from Node to \`ferry serve\``;
  if (section.unavailable !== undefined) return [title, '', `Unavailable: ${section.unavailable}`, ''];
  const lines = [
    title,
    '',
    `Source: ${formatBytes(section.size)} of random bytes in a file (SHA-256 \`${section.sourceSha256.slice(0, 16)}…\`). ` +
      '"First byte": seconds from the start until the first body byte went out; "complete": seconds the ' +
      'parts `complete` call took (the server finishes the SHA-256 it computed while the parts arrived, reading back any part it could not keep in memory, and moves the file); "MB/s while sending": the file over ' +
      'the time between the two. Every upload runs in a fresh client process against a fresh `ferry serve` (default settings, empty data ' +
      'directory); its stored file is hashed against the source afterwards. ' +
      `${section.runs.loopback} run(s) per client on loopback, ${section.runs['long-link']} on the long link; ` +
      `${Math.round(section.seconds)} s for the section. Client CPU is user + system time of the client process ` +
      '(all threads) per GiB uploaded; RSS is the client process at the start of the upload and its peak. ' +
      `@ferry/client ran from its ${section.ferryClientBuild ?? 'build'}.`,
    '',
    '### Client targets',
    '',
    '| target | measured | goal | status |',
    '| --- | ---: | ---: | --- |',
    ...clientTargetRows(section),
    '',
  ];
  for (const link of section.links) lines.push(...linkTable(link, section.size), '');
  lines.push('### Every client run', '', ...runTable(section), '');
  return lines;
}
