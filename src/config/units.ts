// Memory sizes as release authors write them: a number and a 1024-based unit.
const UNITS: Record<string, number> = {
  B: 1, K: 2 ** 10, KB: 2 ** 10, KIB: 2 ** 10, M: 2 ** 20, MB: 2 ** 20, MIB: 2 ** 20,
  G: 2 ** 30, GB: 2 ** 30, GIB: 2 ** 30, T: 2 ** 40, TB: 2 ** 40, TIB: 2 ** 40,
};

/** "512M" → bytes; null when the text is not a positive size with a unit. */
export function parseMemorySize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$/.exec(text);
  if (!m) return null;
  const unit = UNITS[m[2]!.toUpperCase()];
  if (unit === undefined) return null;
  const bytes = Math.floor(Number(m[1]) * unit);
  return bytes > 0 && Number.isSafeInteger(bytes) ? bytes : null;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "45s", "2m", "1m30s", "500ms", or a bare number of seconds ("45", "2.5") → milliseconds; null when it is none of these. */
export function parseDuration(text: string): number | null {
  const s = text.trim();
  let ms: number;
  if (/^\d+(?:\.\d+)?$/.test(s)) ms = Number(s) * 1000;
  else {
    if (!/^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/.test(s)) return null;
    ms = 0;
    for (const [, n, unit] of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(n) * DURATION_UNITS[unit!]!;
  }
  ms = Math.round(ms);
  return Number.isSafeInteger(ms) ? ms : null;
}
