// The web section of the markdown report: the app's size, Chromium against the Node client, and the
// main thread while uploading.
import {
  JS_BUDGET_BYTES,
  LONG_TASK_TARGET_MS,
  medianThroughput,
  THROUGHPUT_TARGET,
  type WebProtocol,
  type WebSample,
  type WebSectionResult,
  webProtocols,
} from './web-bench.ts';
import { formatBytes } from './workloads.ts';

const status = (pass: boolean) => (pass ? 'PASS' : '**MISS**');
const kB = (bytes: number) => `${(bytes / 1000).toFixed(1)} kB`;

function longestTask(samples: readonly WebSample[], protocol?: WebProtocol): number | undefined {
  const tasks = samples
    .filter((s) => s.ok && s.longTasks !== undefined && (protocol === undefined || s.protocol === protocol))
    .map((s) => s.longTasks!.longestMs);
  return tasks.length === 0 ? undefined : Math.max(...tasks);
}

export function webFailureLines(result: WebSectionResult): string[] {
  return result.samples
    .filter((sample) => !sample.ok || !sample.verified)
    .map(
      (sample) => `- web ${sample.client} ${sample.protocol}: ${sample.ok ? sample.failure : sample.error}`,
    );
}

export function renderWebSection(result: WebSectionResult): string[] {
  const lines = ['## Web app', ''];
  const sizes = result.sizes;
  if (sizes === undefined) {
    lines.push(`Not measured: ${result.unavailable}.`, '');
    return lines;
  }
  const failures = webFailureLines(result);
  if (failures.length > 0) lines.push('### Web failures', '', ...failures, '');

  const targets = [
    '| target | measured | goal | status |',
    '| --- | ---: | ---: | --- |',
    `| JavaScript the app loads at start, gzipped | ${kB(sizes.startJsGzip)} | ≤ ${kB(JS_BUDGET_BYTES)} | ${status(sizes.startJsGzip <= JS_BUDGET_BYTES)} |`,
    `| Uppy kept out of the app's build | ${sizes.containsUppy ? 'found' : 'absent'} | absent | ${status(!sizes.containsUppy)} |`,
  ];
  if (result.samples.length > 0) {
    for (const protocol of webProtocols) {
      const browser = medianThroughput(result.samples, 'chromium', protocol);
      const node = medianThroughput(result.samples, 'node', protocol);
      if (browser === 0 || node === 0) continue;
      const ratio = browser / node;
      const goal = protocol === 'parts' ? `≥ ${THROUGHPUT_TARGET}×` : '(for information)';
      targets.push(
        `| ${formatBytes(result.size)} on loopback, ${protocol}: Chromium (the app) / @ferry/client in Node | ${ratio.toFixed(2)}× | ${goal} | ${protocol === 'parts' ? status(ratio >= THROUGHPUT_TARGET) : '–'} |`,
      );
    }
    const longest = longestTask(result.samples);
    if (longest !== undefined) {
      targets.push(
        `| longest main-thread task while uploading and hashing (Chromium, every run) | ${longest.toFixed(0)} ms | none over ${LONG_TASK_TARGET_MS} ms | ${status(longest <= LONG_TASK_TARGET_MS)} |`,
      );
    }
  } else if (result.unavailable !== undefined) {
    lines.push(`Uploads not measured: ${result.unavailable}.`, '');
  }
  lines.push('### Web targets', '', ...targets, '');

  lines.push(
    '### The build',
    '',
    `apps/web/dist as \`ferry serve\` serves it; gzip level 9. "start": loaded by index.html; "worker": the SDK's hashing worker, loaded when a file is picked. JavaScript at start ${sizes.startJsGzip} bytes gzipped, all JavaScript ${sizes.allJsGzip} bytes, CSS ${sizes.cssGzip} bytes.`,
    '',
    '| file | role | bytes | gzipped |',
    '| --- | --- | ---: | ---: |',
    ...sizes.assets.map((asset) => `| ${asset.file} | ${asset.role} | ${asset.bytes} | ${asset.gzipBytes} |`),
    '',
  );

  if (result.samples.length > 0) {
    lines.push(
      `### Uploads: one ${formatBytes(result.size)} file, Chromium against Node`,
      '',
      'Chromium: the file picked in the app (`DOM.setFileInputFiles` over a bare DevTools connection, so no request ' +
        "body is copied into DevTools events), from the input's `change` until its download link appeared " +
        '(created, sent, hashed, completed). Node: `@ferry/client` with its defaults (parts: 4 in parallel) in a ' +
        `process of its own, from \`start()\` until it resolved${result.nodeClientBuild ? `; it ran from its ${result.nodeClientBuild}` : ''}. ` +
        'Each upload goes to a fresh `ferry serve` with an empty data directory; the stored file is hashed against ' +
        'the source. Main-thread tasks: every task over 50 ms the Long Tasks API reported from the pick to the end.',
      '',
      '| run | client | protocol | MB/s | seconds | tasks > 50 ms | tasks > 100 ms | longest task ms | other load | stored file |',
      '| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
      ...result.samples.map((sample) => {
        const who = sample.client === 'chromium' ? 'Chromium (the app)' : '@ferry/client in Node';
        if (!sample.ok)
          return `| ${sample.run} | ${who} | ${sample.protocol} | FAILED: ${sample.error} | | | | | | |`;
        const tasks = sample.longTasks;
        return `| ${sample.run} | ${who} | ${sample.protocol} | ${sample.throughput.toFixed(1)} | ${sample.seconds.toFixed(1)} | ${tasks?.count ?? '–'} | ${tasks?.overTarget ?? '–'} | ${tasks === undefined ? '–' : tasks.longestMs.toFixed(0)} | ${(100 * sample.otherLoad).toFixed(0)} % | ${sample.verified ? 'SHA-256 matches' : `MISMATCH: ${sample.failure}`} |`;
      }),
      '',
      `${Math.round(result.seconds)} s for the section.`,
      '',
    );
  }
  return lines;
}
