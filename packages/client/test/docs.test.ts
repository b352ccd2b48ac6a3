/** docs/client.md lists exactly the client's error codes, and states the default retry policy. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CLIENT_ERRORS, DEFAULT_RETRY_POLICY } from '../src/index.ts';

const doc = readFileSync(new URL('../../../docs/client.md', import.meta.url), 'utf8');

/** Codes in the first cell of a table row: `| \`ERR_X\` | …`. */
function documentedCodes(markdown: string): string[] {
  const codes: string[] = [];
  for (const line of markdown.split('\n')) {
    const match = /^\|\s*`(ERR_[A-Z0-9_]+)`\s*\|/.exec(line.trim());
    if (match?.[1] !== undefined) codes.push(match[1]);
  }
  return codes;
}

describe('docs/client.md', () => {
  it('finds table rows (the parser works on a known snippet)', () => {
    assert.deepEqual(documentedCodes('| Code | x |\n| --- | --- |\n| `ERR_A` | yes |\n'), ['ERR_A']);
  });

  it('lists every client error code once, and no other', () => {
    const documented = documentedCodes(doc);
    assert.equal(new Set(documented).size, documented.length, 'a code is listed twice');
    assert.deepEqual([...documented].sort(), Object.keys(CLIENT_ERRORS).sort());
  });

  it('states the default retry policy', () => {
    const { limit, statusCodes, backoff } = DEFAULT_RETRY_POLICY;
    assert.ok(doc.includes(`limit: ${limit},`));
    assert.ok(doc.includes(`statusCodes: [${statusCodes.join(', ')}]`));
    assert.ok(
      doc.includes(
        `backoff: { initialMs: ${backoff.initialMs}, maxMs: ${backoff.maxMs}, factor: ${backoff.factor} }`,
      ),
    );
  });
});
