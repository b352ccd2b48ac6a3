/**
 * Sizes, rates and durations in plain words for people ("3.2 GB", "2.4 MB/s", "3 min 20 s").
 * Decimal units (1 kB = 1000 bytes), as file managers on macOS and phones show them, so a size
 * here matches what the user sees next to the file.
 */

const UNITS = ['kB', 'MB', 'GB', 'TB', 'PB'] as const;

/** One decimal below 100 ("3.2", "12.5"), none above ("240"); a trailing ".0" is dropped. */
function shortNumber(value: number): string {
  return value < 100 ? String(Math.round(value * 10) / 10) : String(Math.round(value));
}

/** "0 bytes", "1 byte", "999 bytes", "1.5 kB", "3.2 GB", "240 MB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 1000) {
    const whole = Math.max(0, Math.round(bytes || 0));
    return whole === 1 ? '1 byte' : `${whole} bytes`;
  }
  let unit = 0;
  let value = bytes / 1000;
  // Move up while the rounded value would read 1000 or more ("1000 kB" reads as "1 MB").
  while (unit < UNITS.length - 1 && Number(shortNumber(value)) >= 1000) {
    value /= 1000;
    unit++;
  }
  return `${shortNumber(value)} ${UNITS[unit]}`;
}

/**
 * Two sizes that must read differently (a file over a limit): when the short forms are equal
 * ("2.1 GB" and "2.1 GB"), both are given in bytes.
 */
export function formatBytesApart(a: number, b: number): [string, string] {
  const shortA = formatBytes(a);
  const shortB = formatBytes(b);
  if (shortA !== shortB) return [shortA, shortB];
  const exact = (bytes: number) => `${bytes.toLocaleString('en-US')} bytes`;
  return [exact(a), exact(b)];
}

/** "2.4 MB/s". */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** "less than a second", "45 s", "3 min 20 s", "2 h 5 min", "3 d 4 h" (rounded up to the unit shown). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return 'unknown';
  if (seconds < 1) return 'less than a second';
  const total = Math.ceil(seconds);
  if (total < 60) return `${total} s`;
  if (total < 3600) {
    const minutes = Math.floor(total / 60);
    const rest = total % 60;
    return rest === 0 ? `${minutes} min` : `${minutes} min ${rest} s`;
  }
  const totalMinutes = Math.ceil(total / 60);
  if (totalMinutes < 24 * 60) {
    const hours = Math.floor(totalMinutes / 60);
    const rest = totalMinutes % 60;
    return rest === 0 ? `${hours} h` : `${hours} h ${rest} min`;
  }
  const totalHours = Math.ceil(totalMinutes / 60);
  const days = Math.floor(totalHours / 24);
  const rest = totalHours % 24;
  return rest === 0 ? `${days} d` : `${days} d ${rest} h`;
}

/** "a, b and c" (or "a, b or c"). */
export function joinWords(words: readonly string[], conjunction: 'and' | 'or' = 'and'): string {
  if (words.length <= 1) return words[0] ?? '';
  return `${words.slice(0, -1).join(', ')} ${conjunction} ${words[words.length - 1]}`;
}
