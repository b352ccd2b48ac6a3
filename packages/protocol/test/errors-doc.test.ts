/**
 * Keeps docs/errors.md and the ERRORS table in step: the doc must list exactly the codes of the
 * table, each with the same status, and the table itself must only hold error statuses.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERRORS, type ErrorCode, errorBody, isUploadError, UploadError } from '../src/errors.ts';

const DOC_URL = new URL('../../../docs/errors.md', import.meta.url);

interface DocRow {
  code: string;
  status: number;
  when: string;
  action: string;
}

/** Rows of the markdown table whose first cell is a backquoted code: `| \`ERR_X\` | 400 | … | … |`. */
function parseErrorTable(markdown: string): DocRow[] {
  const rows: DocRow[] = [];
  for (const line of markdown.split('\n')) {
    const match = /^\|\s*`(ERR_[A-Z0-9_]+)`\s*\|\s*(\d{3})\s*\|(.*)\|\s*$/.exec(line.trim());
    if (match === null) continue;
    const [, code = '', status = '', rest = ''] = match;
    const cells = rest.split(' | ').map((cell) => cell.trim());
    rows.push({ code, status: Number(status), when: cells[0] ?? '', action: cells.slice(1).join(' | ') });
  }
  return rows;
}

const rows = parseErrorTable(readFileSync(DOC_URL, 'utf8'));
const codes = Object.keys(ERRORS) as ErrorCode[];

describe('docs/errors.md', () => {
  it('parses the table (the parser finds rows in a known snippet)', () => {
    const parsed = parseErrorTable(
      '| Code | Status | When | Do |\n| --- | --- | --- | --- |\n| `ERR_X` | 418 | when `a` | retry |\n',
    );
    assert.deepEqual(parsed, [{ code: 'ERR_X', status: 418, when: 'when `a`', action: 'retry' }]);
  });

  it('lists each code once', () => {
    const seen = new Set<string>();
    for (const row of rows) {
      assert.ok(!seen.has(row.code), `${row.code} is listed twice`);
      seen.add(row.code);
    }
  });

  it('lists every code of ERRORS', () => {
    const documented = new Set(rows.map((row) => row.code));
    const missing = codes.filter((code) => !documented.has(code));
    assert.deepEqual(missing, [], `missing from docs/errors.md: ${missing.join(', ')}`);
  });

  it('lists no code that ERRORS does not have', () => {
    const unknown = rows.map((row) => row.code).filter((code) => !Object.hasOwn(ERRORS, code));
    assert.deepEqual(unknown, [], `in docs/errors.md but not in ERRORS: ${unknown.join(', ')}`);
  });

  it('gives each code the status of ERRORS', () => {
    for (const row of rows) {
      if (!Object.hasOwn(ERRORS, row.code)) continue;
      assert.equal(row.status, ERRORS[row.code as ErrorCode].status, `status of ${row.code}`);
    }
  });

  it('says when each error happens and what a client should do', () => {
    for (const row of rows) {
      assert.ok(row.when.length > 10, `${row.code}: the "when" cell is empty`);
      assert.ok(row.action.length > 5, `${row.code}: the "what to do" cell is empty`);
    }
  });
});

describe('ERRORS', () => {
  it('gives every code a 4xx or 5xx status and a message', () => {
    for (const code of codes) {
      const { status, message } = ERRORS[code];
      assert.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code}: status ${status}`);
      assert.ok(message.length > 0, `${code}: empty message`);
      assert.match(code, /^ERR_[A-Z0-9_]+$/);
    }
  });
});

describe('UploadError', () => {
  it('keeps code, status, message and cause', () => {
    const cause = new Error('disk on fire');
    const error = new UploadError('ERR_STORAGE_UNAVAILABLE', { cause });
    assert.ok(error instanceof Error);
    assert.ok(isUploadError(error));
    assert.equal(error.name, 'UploadError');
    assert.equal(error.code, 'ERR_STORAGE_UNAVAILABLE');
    assert.equal(error.status, 503);
    assert.equal(error.message, ERRORS.ERR_STORAGE_UNAVAILABLE.message);
    assert.equal(error.cause, cause);
  });

  it('takes a custom message, details and headers; no cause when none is given', () => {
    const error = new UploadError('ERR_OFFSET_MISMATCH', {
      message: 'nope',
      details: { offset: 5 },
      headers: { 'upload-offset': '5' },
    });
    assert.equal(error.status, 409);
    assert.equal(error.message, 'nope');
    assert.deepEqual(error.details, { offset: 5 });
    assert.deepEqual(error.headers, { 'upload-offset': '5' });
    assert.equal('cause' in error, false);
    assert.equal(isUploadError(new Error('plain')), false);
  });
});

describe('errorBody', () => {
  it('shapes { error: { code, message } } without details when there are none', () => {
    const body = errorBody(new UploadError('ERR_NOT_FOUND'));
    assert.deepEqual(body, { error: { code: 'ERR_NOT_FOUND', message: ERRORS.ERR_NOT_FOUND.message } });
    assert.equal('details' in body.error, false);
  });

  it('adds details, and never the cause or headers', () => {
    const error = new UploadError('ERR_UPLOAD_TOO_LARGE', {
      details: { maxSize: 10 },
      cause: new Error('secret internals'),
      headers: { 'x-a': 'b' },
    });
    const body = errorBody(error);
    assert.deepEqual(body, {
      error: {
        code: 'ERR_UPLOAD_TOO_LARGE',
        message: ERRORS.ERR_UPLOAD_TOO_LARGE.message,
        details: { maxSize: 10 },
      },
    });
    assert.doesNotMatch(JSON.stringify(body), /secret internals/);
  });
});
