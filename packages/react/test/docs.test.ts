/** docs/react.md names every export of the package (read from src/index.ts, which Node cannot load: it re-exports a .tsx). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const doc = readFileSync(new URL('../../../docs/react.md', import.meta.url), 'utf8');
const index = readFileSync(new URL('../src/index.ts', import.meta.url), 'utf8');

/** The names in `export { a, type B } from …` and `export type { C } from …` statements. */
function exportedNames(source: string): string[] {
  const names: string[] = [];
  for (const match of source.matchAll(/export (?:type )?\{([^}]*)\}/g)) {
    for (const part of (match[1] ?? '').split(',')) {
      const name = part.trim().replace(/^type\s+/, '');
      if (name !== '') names.push(name);
    }
  }
  return names;
}

/** Whether `name` appears as a word inside a `code span`. */
function documented(markdown: string, name: string): boolean {
  const word = new RegExp(`(^|[^A-Za-z0-9_])${name}([^A-Za-z0-9_]|$)`);
  return (markdown.match(/`[^`\n]+`/g) ?? []).some((span) => word.test(span));
}

describe('docs/react.md', () => {
  it('the export parser reads both forms', () => {
    assert.deepEqual(
      exportedNames("export { a, type B } from './x.ts';\nexport type {\n  C,\n} from './y.ts';"),
      ['a', 'B', 'C'],
    );
    assert.equal(documented('use `useUploads(options)` here', 'useUploads'), true);
    assert.equal(documented('use `useUploadsX` here', 'useUploads'), false);
  });

  it('names every export of @ferry/react', () => {
    const names = exportedNames(index);
    assert.ok(names.length > 20, 'the index was read');
    assert.deepEqual(
      names.filter((name) => !documented(doc, name)),
      [],
    );
  });
});
