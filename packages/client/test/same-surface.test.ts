/**
 * The Node and browser builds of `@ferry/client` export the same API. The type check of this file
 * fails when a value export differs in name or type; the test below fails when the names differ at
 * run time, and when either entry declares a type of its own instead of sharing common.ts's.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import type * as BrowserBuild from '../src/browser.ts';
import type * as NodeBuild from '../src/index.ts';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Node = typeof NodeBuild;
type Browser = typeof BrowserBuild;
/** Export by export, so a difference names the export in the compiler's message. */
type Differences = {
  [K in keyof Node | keyof Browser as K extends keyof Node & keyof Browser
    ? Equal<Node[K], Browser[K]> extends true
      ? never
      : K
    : K]: 'differs or is missing in one build';
};

const sameSurface: Equal<keyof Node, keyof Browser> = true;
const noDifferences: Equal<keyof Differences, never> = true;

describe('the Node and browser builds', () => {
  it('have identical value exports, checked by the compiler', () => {
    assert.equal(sameSurface && noDifferences, true);
  });

  it('export the same names at run time', async () => {
    const node = Object.keys(await import('../src/index.ts')).sort();
    const browser = Object.keys(await import('../src/browser.ts')).sort();
    assert.deepEqual(browser, node);
    for (const name of ['createUpload', 'defaultPlatform', 'findResumableUploads', 'BlobSource']) {
      assert.ok(node.includes(name), name);
    }
  });

  it('share every type through common.ts', async () => {
    for (const entry of ['index.ts', 'browser.ts']) {
      const text = await readFile(new URL(`../src/${entry}`, import.meta.url), 'utf8');
      assert.match(text, /^export \* from '\.\/common\.ts';$/m, entry);
      assert.doesNotMatch(text, /^export (type|interface|class|enum|const|let|\{)/m, entry);
    }
  });
});
