/**
 * Which picked or dropped files may be added, and why the others may not, in plain words that
 * name the file and the rule ("report.pdf is 3.2 GB; the limit is 2 GB."). The same rules as the
 * browser's `accept` attribute, which only filters the file picker: a drop bypasses it.
 */
import { formatBytes, formatBytesApart, joinWords } from './format.ts';

export interface FileRules {
  /**
   * What the file chooser offers and what is accepted, as in `<input accept>`: comma-separated
   * extensions (`.pdf`), media types (`application/pdf`) and wildcards (`image/*`). Default: any.
   */
  accept?: string | undefined;
  /** Largest file accepted, in bytes. Default: no limit (the server still has its own). */
  maxSize?: number | undefined;
  /** Most files in the list at once (finished ones count until removed). Default: no limit. */
  maxFiles?: number | undefined;
}

/** The facts validation needs about a file (a `File` has them all). */
export interface FileFacts {
  readonly name: string;
  readonly size: number;
  readonly type: string;
  readonly lastModified?: number;
}

export type RejectionReason = 'type' | 'size' | 'count' | 'duplicate';

export interface Rejection<F extends FileFacts = File> {
  readonly file: F;
  readonly reason: RejectionReason;
  /** One sentence naming the file and the rule, for people. */
  readonly message: string;
}

export interface Checked<F extends FileFacts = File> {
  readonly accepted: readonly F[];
  readonly rejected: readonly Rejection<F>[];
}

const WILDCARD_WORDS: Record<string, string> = {
  image: 'images',
  video: 'videos',
  audio: 'audio files',
  text: 'text files',
};

function tokens(accept: string | undefined): string[] {
  return (accept ?? '')
    .split(',')
    .map((token) => token.trim().toLowerCase())
    .filter((token) => token !== '');
}

/** Whether the file matches `accept` as a browser's file chooser would match it. */
export function isAccepted(file: Pick<FileFacts, 'name' | 'type'>, accept: string | undefined): boolean {
  const list = tokens(accept);
  if (list.length === 0) return true;
  const name = file.name.toLowerCase();
  const type = file.type.toLowerCase();
  return list.some((token) => {
    if (token.startsWith('.')) return name.endsWith(token);
    if (token.endsWith('/*')) return type.startsWith(token.slice(0, -1));
    return type === token;
  });
}

/** "images and .pdf or .docx files": what `accept` lets in, for a message. */
export function describeAccept(accept: string | undefined): string {
  const words: string[] = [];
  const kinds: string[] = [];
  for (const token of tokens(accept)) {
    if (token.startsWith('.')) kinds.push(token);
    else if (token.endsWith('/*')) {
      const major = token.slice(0, -2);
      words.push(WILDCARD_WORDS[major] ?? `${major} files`);
    } else {
      // "application/pdf" reads as "PDF"; a long or odd subtype stays as the whole media type.
      const subtype = token.split('/')[1] ?? token;
      kinds.push(/^[a-z0-9]{1,5}$/.test(subtype) ? subtype.toUpperCase() : token);
    }
  }
  if (kinds.length > 0) words.push(`${joinWords([...new Set(kinds)], 'or')} files`);
  return joinWords(words);
}

function sameFile(a: FileFacts, b: FileFacts): boolean {
  return a.name === b.name && a.size === b.size && (a.lastModified ?? 0) === (b.lastModified ?? 0);
}

/**
 * Splits `files` into those to add and those refused, in order: type, size, duplicate (the same
 * name, size and modification time already listed or earlier in `files`), then the count. `listed`
 * are the files already in the list that count against `maxFiles` and duplicates.
 */
export function checkFiles<F extends FileFacts>(
  files: Iterable<F>,
  rules: FileRules,
  listed: readonly FileFacts[] = [],
): Checked<F> {
  const accepted: F[] = [];
  const rejected: Rejection<F>[] = [];
  for (const file of files) {
    const rejection = checkOne(file, rules, [...listed, ...accepted], listed.length + accepted.length);
    if (rejection === undefined) accepted.push(file);
    else rejected.push(rejection);
  }
  return { accepted, rejected };
}

function checkOne<F extends FileFacts>(
  file: F,
  rules: FileRules,
  listed: readonly FileFacts[],
  count: number,
): Rejection<F> | undefined {
  const name = file.name || 'This file';
  if (!isAccepted(file, rules.accept)) {
    return {
      file,
      reason: 'type',
      message: `${name} can't be uploaded here: only ${describeAccept(rules.accept)} are accepted.`,
    };
  }
  if (rules.maxSize !== undefined && file.size > rules.maxSize) {
    const [size, limit] = formatBytesApart(file.size, rules.maxSize);
    return { file, reason: 'size', message: `${name} is ${size}; the limit is ${limit}.` };
  }
  if (listed.some((other) => sameFile(other, file))) {
    return { file, reason: 'duplicate', message: `${name} is already in the list.` };
  }
  if (rules.maxFiles !== undefined && count >= rules.maxFiles) {
    const limit = rules.maxFiles === 1 ? 'one file' : `${rules.maxFiles} files`;
    return { file, reason: 'count', message: `${name} was not added: the limit is ${limit}.` };
  }
  return undefined;
}

/** "Up to 2 GB each; images and .pdf files; at most 5 files": the rules, for a hint under the drop area. */
export function describeRules(rules: FileRules): string {
  const parts: string[] = [];
  if (rules.accept !== undefined && tokens(rules.accept).length > 0) {
    const kinds = describeAccept(rules.accept);
    parts.push(kinds.charAt(0).toUpperCase() + kinds.slice(1));
  }
  if (rules.maxSize !== undefined) parts.push(`up to ${formatBytes(rules.maxSize)} each`);
  if (rules.maxFiles !== undefined) {
    parts.push(rules.maxFiles === 1 ? 'one file' : `at most ${rules.maxFiles} files`);
  }
  if (parts.length === 0) return '';
  const text = parts.join('; ');
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}
