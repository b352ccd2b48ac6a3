/**
 * Where `ferry serve` finds the built web app by default: `apps/web/dist` of the repository this
 * command belongs to. Found from this file's own location (it runs from `src/` or `dist/src/`), so
 * it does not depend on the working directory.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** How docs and help show the default (the absolute path differs from machine to machine). */
export const DEFAULT_WEB_DIR_LABEL = '<repository>/apps/web/dist';

export const DEFAULT_WEB_DIR: string = findDefaultWebDir();

function findDefaultWebDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  let directory = here;
  for (let depth = 0; depth < 3; depth++) {
    try {
      const manifest = JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as { name?: string };
      if (manifest.name === '@ferry/cli') return resolve(directory, '../../apps/web/dist');
    } catch {
      // no manifest at this depth
    }
    directory = dirname(directory);
  }
  return resolve(here, '../../../apps/web/dist');
}
