/**
 * MIME types and the patterns that allow them (`image/png`, `image/*`, `*\/*`), shared by upload
 * tokens' `types` claim and the server's `allowTypes` content check. Imports nothing, so the
 * configuration can validate with it.
 */

/** `type/subtype`, `type/*` or `*\/*`, lower case, without parameters. */
export const TYPE_PATTERN =
  /^(?:\*\/\*|[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/(?:\*|[a-z0-9][a-z0-9!#$&^_.+-]{0,126}))$/;

/** Reads `image/PNG; charset=x` as `image/png`. */
export function normalizeType(type: string): string {
  return (type.split(';')[0] ?? '').trim().toLowerCase();
}

/** True when `type` matches one of `patterns` (`image/png`, `image/*`, `*\/*`). */
export function typeAllowed(patterns: readonly string[], type: string): boolean {
  const wanted = normalizeType(type);
  const slash = wanted.indexOf('/');
  if (slash <= 0 || slash === wanted.length - 1) return false;
  const major = wanted.slice(0, slash);
  return patterns.some((pattern) => pattern === '*/*' || pattern === wanted || pattern === `${major}/*`);
}
