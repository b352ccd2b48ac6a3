import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CONFIG_FIELDS, DEFAULT_CONFIG } from '@ferry/server';
import { OPTIONS_BY_KEY, SERVE_OPTIONS } from '../src/options.ts';
import { runCli } from './run-cli.ts';

const ferry = (...argv: string[]) => runCli(process.cwd(), ...argv);

/** The lines of the help that describe one option: its flag line and the indented lines below it. */
function helpBlock(help: string, flag: string): string {
  const lines = help.split('\n');
  const start = lines.findIndex((line) => line === `  ${flag}` || line.startsWith(`  ${flag} `));
  assert.ok(start >= 0, `no help entry for ${flag}`);
  const end = lines.findIndex((line, index) => index > start && !line.startsWith('      '));
  return lines.slice(start, end).join('\n');
}

describe('ferry serve --help', () => {
  it('lists every server field with its flag, variable, default and description', async () => {
    const { code, stdout, stderr } = await ferry('serve', '--help');
    assert.equal(code, 0);
    assert.equal(stderr, '');
    for (const field of CONFIG_FIELDS) {
      const entry = OPTIONS_BY_KEY.get(field.key)!;
      const block = helpBlock(
        stdout,
        field.type === 'boolean' ? `--[no-]${entry.flag.slice(2)}` : entry.flag,
      );
      const fallback = DEFAULT_CONFIG[field.key];
      const shown = entry.defaultLabel ?? (Array.isArray(fallback) ? fallback.join(',') : String(fallback));
      assert.ok(block.includes(field.description), `${field.key}: description missing in\n${block}`);
      assert.ok(block.includes(`env ${entry.env}`), `${field.key}: variable missing in\n${block}`);
      assert.match(
        block,
        new RegExp(`default ${shown.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}( |$)`),
        field.key,
      );
      for (const value of field.values ?? [])
        assert.ok(block.includes(value), `${field.key}: ${value} missing`);
    }
  });

  it('lists host, port and config with their defaults', async () => {
    const { stdout } = await ferry('serve', '-h');
    assert.match(helpBlock(stdout, '--host'), /env FERRY_HOST\s+default 127\.0\.0\.1$/);
    assert.match(helpBlock(stdout, '--port'), /env FERRY_PORT\s+default 1080$/);
    assert.match(helpBlock(stdout, '--config'), /env FERRY_CONFIG/);
  });

  it('shows readable forms of sizes and durations next to the plain default', async () => {
    const { stdout } = await ferry('help', 'serve');
    assert.match(helpBlock(stdout, '--max-size'), /default 5497558138880 \(5TiB\)/);
    assert.match(helpBlock(stdout, '--expiry-seconds'), /default 86400 \(1d\)/);
    assert.match(helpBlock(stdout, '--[no-]hash-uploads'), /default false/);
  });

  it('has an entry for every option and nothing else', async () => {
    const { stdout } = await ferry('serve', '--help');
    const flags = stdout
      .split('\n')
      .filter((line) => /^ {2}--/.test(line))
      .map((line) => line.trim().split(' ')[0]!.replace('[no-]', ''));
    assert.deepEqual(
      flags,
      SERVE_OPTIONS.map((entry) => entry.flag),
    );
  });
});

describe('ferry', () => {
  it('--help lists the commands', async () => {
    const { code, stdout } = await ferry('--help');
    assert.equal(code, 0);
    assert.match(stdout, /^Usage: ferry <command>/);
    assert.match(stdout, /^ {2}serve +run the upload server/m);
    assert.match(stdout, /^ {2}upload +upload files/m);
    assert.match(stdout, /^ {2}download +download a file/m);
  });

  it('--version prints the package version', async () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    for (const flag of ['--version', '-v']) {
      const { code, stdout } = await ferry(flag);
      assert.equal(code, 0);
      assert.equal(stdout, `${manifest.version}\n`);
    }
  });

  it('--version works from the compiled command too (bin/ferry.js runs dist/)', () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    const bin = fileURLToPath(new URL('../bin/ferry.js', import.meta.url));
    assert.equal(
      execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' }),
      `${manifest.version}\n`,
    );
  });

  it('without a command prints the help to stderr and exits 2', async () => {
    const { code, stdout, stderr } = await ferry();
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.match(stderr, /Commands:/);
  });

  it('refuses an unknown command with a suggestion and exit status 2', async () => {
    const { code, stderr } = await ferry('srve');
    assert.equal(code, 2);
    assert.equal(
      stderr,
      'ferry: unknown command "srve" (did you mean "serve"?)\nRun "ferry --help" to see what is accepted.\n',
    );
    assert.equal((await ferry('help', 'nothing')).code, 2);
  });

  it('refuses an unknown flag with exit status 2 and a hint to --help', async () => {
    const { code, stdout, stderr } = await ferry('serve', '--prot', '80');
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.equal(
      stderr,
      'ferry: unknown option --prot (did you mean --port?)\nRun "ferry serve --help" to see what is accepted.\n',
    );
  });

  it('refuses a bad value with exit status 2 and the source in the message', async () => {
    const { code, stderr } = await ferry('serve', '--max-size', '5 gigs');
    assert.equal(code, 2);
    assert.match(stderr, /^ferry: --max-size: "5 gigs" has an unknown unit "gigs"/);
  });
});
