import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CONFIG_FIELDS } from '@ferry/server';
import { CONFIGURATION_DOC, updateConfigurationDoc } from '../src/docs.ts';
import { OPTIONS_BY_KEY, SERVE_OPTIONS } from '../src/options.ts';

const doc = readFileSync(CONFIGURATION_DOC, 'utf8');
const cli = readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8');

/** The cells of every Markdown table row, trimmed. */
function tableRows(markdown: string): string[][] {
  return markdown
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) =>
      line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((text) => text.trim()),
    );
}

describe('docs/configuration.md', () => {
  it('has a table row for every CONFIG_FIELDS key with its flag, variable, file key and description', () => {
    const rows = tableRows(doc).filter((cells) => cells[0]?.startsWith('`--'));
    for (const field of CONFIG_FIELDS) {
      const entry = OPTIONS_BY_KEY.get(field.key)!;
      const row = rows.find((cells) => cells[0]!.startsWith(`\`${entry.flag}`));
      assert.ok(row, `no row for ${field.key}`);
      assert.equal(row[1], `\`${entry.env}\``);
      assert.equal(row[2], `\`${field.key}\``);
      assert.equal(row[5], field.description);
    }
    assert.equal(rows.length, SERVE_OPTIONS.length);
  });

  it('holds the table as generated now (run `node packages/cli/src/docs.ts` after changing options)', () => {
    assert.equal(doc, updateConfigurationDoc(doc));
  });
});

describe('docs/cli.md', () => {
  it('documents ferry serve, its exit statuses and the ready line', () => {
    assert.match(cli, /ferry serve/);
    assert.match(cli, /Ferry listening on http:\/\/HOST:PORT/);
    const statuses = tableRows(cli).map((cells) => cells[0]);
    for (const status of ['`0`', '`1`', '`2`']) assert.ok(statuses.includes(status), status);
  });
});
