/** "did you mean …?" for a mistyped flag or config key: the closest known name, if close enough. */
export function closest(input: string, candidates: Iterable<string>): string | undefined {
  const wanted = squash(input);
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    // Spelling variants of the same words (dataDir, data_dir, DATA-DIR) are an exact match.
    const known = squash(candidate);
    if (known === wanted) return candidate;
    // A longer or shorter spelling of the same name (dataDirectory, maxSiz) is close however long.
    const [shorter, longer] = known.length < wanted.length ? [known, wanted] : [wanted, known];
    const distance = shorter.length >= 4 && longer.startsWith(shorter) ? 1 : editDistance(wanted, known);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(wanted.length / 4)) ? best : undefined;
}

function squash(name: string): string {
  return name.replace(/^-+/, '').replace(/[-_]/g, '').toLowerCase();
}

/** Levenshtein distance: insertions, deletions and substitutions each cost one. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}
