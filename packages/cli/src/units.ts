/**
 * Text forms of sizes and durations accepted on the command line, in the environment and in the
 * config file. A bare number is in the option's base unit, so scripts that pass plain integers keep
 * working; a suffix only saves counting zeros.
 */

/** The base unit of an integer option. */
export type OptionUnit = 'bytes' | 'milliseconds' | 'seconds' | 'count';

// Decimal (SI) and binary (IEC) prefixes are both common in operators' heads, and they differ by
// 10 % at TB scale, so both are accepted and kept apart by their spelling (MB ≠ MiB).
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
  pb: 1000 ** 5,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  pib: 1024 ** 5,
};

const DURATION_UNITS_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

export const SIZE_UNIT_NAMES =
  'B; kB, MB, GB, TB, PB (powers of 1000); KiB, MiB, GiB, TiB, PiB (powers of 1024)';
export const DURATION_UNIT_NAMES = 'ms, s, m (minutes), h, d';

const NUMBER_WITH_UNIT = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

/** Why a text could not be read; the caller adds which option and source it came from. */
export class UnitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnitError';
  }
}

/**
 * Reads a non-negative integer in `unit`, with an optional suffix for bytes and durations:
 * `5GiB`, `10 MB`, `1.5KiB`, `30s`, `24h`, `250ms`. The result must be a whole number of the base
 * unit (`1500ms` is not a number of seconds).
 */
export function parseQuantity(text: string, unit: OptionUnit): number {
  const match = NUMBER_WITH_UNIT.exec(text.trim());
  if (!match) throw new UnitError(`"${text}" is not ${describeExpected(unit)}`);
  const [, digits = '', suffix = ''] = match;
  // A bare number is in the base unit; seconds are counted in milliseconds below.
  let factor = unit === 'seconds' ? 1000 : 1;
  if (suffix !== '') {
    factor = unitFactor(suffix, unit) ?? 0;
    if (factor === 0)
      throw new UnitError(`"${text}" has an unknown unit "${suffix}": expected ${describeExpected(unit)}`);
  } else if (digits.includes('.')) {
    throw new UnitError(`"${text}" is not a whole number`);
  }
  // Integer arithmetic only, so "1.5GiB" and "2000ms" (as seconds) are exact: the digits without
  // their decimal point, times the unit in the finest grain, divided by what that grain is worth.
  const [whole = '', fraction = ''] = digits.split('.');
  const divisor = 10 ** fraction.length * (unit === 'seconds' ? 1000 : 1);
  const scaled = Number(whole + fraction) * factor;
  if (!Number.isSafeInteger(scaled)) throw new UnitError(`"${text}" is too large`);
  if (scaled % divisor !== 0) throw new UnitError(`"${text}" is not a whole number of ${unitName(unit)}`);
  return scaled / divisor;
}

/**
 * What one `suffix` is worth in the unit's finest grain (bytes, or milliseconds for both duration
 * units), or undefined when the suffix does not fit the unit.
 */
function unitFactor(suffix: string, unit: OptionUnit): number | undefined {
  const lower = suffix.toLowerCase();
  if (unit === 'bytes') return SIZE_UNITS[lower];
  if (unit === 'milliseconds' || unit === 'seconds') return DURATION_UNITS_MS[lower];
  return undefined;
}

function unitName(unit: OptionUnit): string {
  return unit === 'count' ? 'units' : unit;
}

function describeExpected(unit: OptionUnit): string {
  switch (unit) {
    case 'bytes':
      return `a size: a whole number of bytes, or a number with a unit such as 10MB or 5GiB (units: ${SIZE_UNIT_NAMES})`;
    case 'milliseconds':
      return `a duration: a whole number of milliseconds, or a number with a unit such as 500ms or 30s (units: ${DURATION_UNIT_NAMES})`;
    case 'seconds':
      return `a duration: a whole number of seconds, or a number with a unit such as 90s or 24h (units: ${DURATION_UNIT_NAMES})`;
    case 'count':
      return 'a non-negative whole number';
  }
}

/** `5497558138880` → `5TiB`; sizes that are no whole multiple of a binary unit stay plain. */
export function formatSize(bytes: number): string {
  const units = ['PiB', 'TiB', 'GiB', 'MiB', 'KiB'] as const;
  for (const name of units) {
    const factor = SIZE_UNITS[name.toLowerCase()]!;
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${name}`;
  }
  return `${bytes}B`;
}

/** `86400000` → `1d`, `90000` → `90s`; the largest unit that divides the duration evenly. */
export function formatDuration(milliseconds: number): string {
  const units = ['d', 'h', 'm', 's'] as const;
  for (const name of units) {
    const factor = DURATION_UNITS_MS[name]!;
    if (milliseconds >= factor && milliseconds % factor === 0) return `${milliseconds / factor}${name}`;
  }
  return `${milliseconds}ms`;
}
