/** Help texts, generated from the option table so they list exactly what the parser accepts. */
import { readFileSync } from 'node:fs';
import { DEFAULT_CONFIG_FILE, kebabCase, SERVE_OPTIONS, type ServeOption } from './options.ts';
import { DURATION_UNIT_NAMES, formatDuration, formatSize, SIZE_UNIT_NAMES } from './units.ts';

export const COMMANDS: ReadonlyArray<{ name: string; summary: string }> = [
  {
    name: 'serve',
    summary: 'run the upload server (tus 1.0 at /files/ on http://127.0.0.1:1080 by default)',
  },
  {
    name: 'upload',
    summary: 'upload files (tus or the parallel parts API), resumable after Ctrl-C or a crash',
  },
  {
    name: 'download',
    summary: 'download a file in parallel ranges, resumable, verified by SHA-256',
  },
  {
    name: 'token',
    summary: 'mint an upload token for a server started with --auth-secret (prints only the token)',
  },
];

export function version(): string {
  // src/help.ts and dist/src/help.js sit at different depths below the package's manifest.
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const manifest = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as {
        name?: string;
        version: string;
      };
      if (manifest.name === '@ferry/cli') return manifest.version;
    } catch {
      // not at this depth
    }
  }
  return 'unknown';
}

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length)) + 2;
  return [
    'Usage: ferry <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((command) => `  ${command.name.padEnd(width)}${command.summary}`),
    '',
    'Options:',
    '  -h, --help     show this help; `ferry <command> --help` shows the options of a command',
    '  -v, --version  print the version of ferry',
    '',
    'Exit status: 0 done, 1 failed while running, 2 bad command line or configuration.',
    '',
  ].join('\n');
}

/** `<path>`, `<size>`, `<none|fsync>` … the placeholder shown after a flag. */
export function placeholder(entry: ServeOption): string {
  switch (entry.type) {
    case 'boolean':
      return '';
    case 'enum':
      return `<${entry.values?.join('|')}>`;
    case 'list':
      return '<a,b,...>';
    case 'integer':
      if (entry.unit === 'bytes') return '<size>';
      if (entry.unit === 'milliseconds' || entry.unit === 'seconds') return '<duration>';
      return '<n>';
    case 'string':
      return entry.key.endsWith('Dir') || entry.key === 'config' ? '<path>' : `<${kebabCase(entry.key)}>`;
  }
}

/** The flag as typed, with its negation for booleans: `--[no-]trust-proxy`. */
export function flagSyntax(entry: ServeOption): string {
  if (entry.type === 'boolean') return `--[no-]${entry.flag.slice(2)}`;
  return `${entry.flag} ${placeholder(entry)}`;
}

/**
 * The default as written in a flag, plus a readable form where that helps:
 * `5497558138880 (5TiB)`, `86400 (1d)`. The plain value comes first so it can be copied.
 */
export function formatDefault(entry: ServeOption): string {
  const value = entry.defaultValue;
  if (entry.defaultLabel !== undefined) return entry.defaultLabel;
  if (value === undefined) return `./${DEFAULT_CONFIG_FILE} if it exists`;
  if (Array.isArray(value)) return value.join(',');
  if (typeof value === 'number') {
    let readable: string | undefined;
    if (entry.unit === 'bytes') readable = formatSize(value);
    if (entry.unit === 'milliseconds') readable = formatDuration(value);
    if (entry.unit === 'seconds') readable = formatDuration(value * 1000);
    const plain = String(value);
    return readable && value !== 0 && readable !== `${plain}ms` && readable !== `${plain}B`
      ? `${plain} (${readable})`
      : plain;
  }
  return String(value);
}

/** The unit a bare number is read in, for the help and the docs table. */
export function unitLabel(entry: ServeOption): string {
  switch (entry.unit) {
    case 'bytes':
      return 'bytes';
    case 'milliseconds':
      return 'ms';
    case 'seconds':
      return 'seconds';
    case 'count':
      return '';
  }
}

export function serveHelp(): string {
  const lines = [
    'Usage: ferry serve [options]',
    '',
    'Runs the Ferry upload server. Every option can be given as a flag, as a FERRY_* environment',
    `variable or as a key of a JSON config file (--config, FERRY_CONFIG or ./${DEFAULT_CONFIG_FILE});`,
    'flags win over the environment, the environment over the file, the file over the defaults.',
    '',
    'Options:',
  ];
  for (const entry of SERVE_OPTIONS) {
    lines.push(`  ${flagSyntax(entry)}`);
    const unit = unitLabel(entry);
    lines.push(`      ${entry.description}${unit && !entry.description.includes(unit) ? ` (${unit})` : ''}`);
    lines.push(`      env ${entry.env}   default ${formatDefault(entry)}`);
  }
  lines.push(
    '  -h, --help',
    '      show this help',
    '',
    'Values:',
    '  sizes      a number of bytes, or with a unit: 10MB, 5GiB, 1.5TiB',
    `             units ${SIZE_UNIT_NAMES}`,
    "  durations  a number in the option's unit, or with a unit: 500ms, 30s, 24h",
    `             units ${DURATION_UNIT_NAMES}`,
    '  booleans   flags --name / --no-name; in the environment 1/0, true/false, yes/no, on/off',
    '  lists      comma-separated: --cors-origins https://a.example,https://b.example',
    '',
    'When ready, prints one line to stdout: Ferry listening on http://HOST:PORT',
    'Logs are JSON lines on stderr. SIGTERM or SIGINT shuts down gracefully; a second one exits at once.',
    '',
  );
  return lines.join('\n');
}
