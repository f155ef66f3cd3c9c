import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { lastLinesStart, type TailStart } from "../../src/runtime/tail.ts";

const dir = mkdtempSync(join(tmpdir(), "bpm-tail-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs check on a file holding data, with lastLinesStart on it. */
function withLog(data: Buffer, check: (file: string, start: (n: number, maxLine?: number) => TailStart) => void): void {
  const file = join(dir, "log");
  writeFileSync(file, data);
  const fd = openSync(file, "r");
  try {
    check(file, (n, maxLine) => lastLinesStart(fd, data.length, n, maxLine));
  } finally {
    closeSync(fd);
  }
}

/** The rule written out plainly: the lines as tail splits them, the last n
 * taken back to front until one is longer than maxLine, which is cut. */
function expected(data: Buffer, n: number, maxLine: number) {
  const ends: number[] = [];
  for (let i = 0; i < data.length; i++) if (data[i] === 0x0a) ends.push(i + 1);
  if (ends.at(-1) !== data.length && data.length > 0) ends.push(data.length);
  let start = data.length;
  for (let k = ends.length - 1; k >= 0 && ends.length - k <= n; k--) {
    const begin = k > 0 ? ends[k - 1]! : 0;
    const end = ends[k]!;
    if (end - begin > maxLine) {
      const nul = data.subarray(end - maxLine, end).lastIndexOf(0);
      return { start: nul >= 0 ? end - maxLine + nul + 1 : end - maxLine, cut: true };
    }
    start = begin;
  }
  return { start, cut: false };
}

function randomLog(seed: number): Buffer {
  let x = seed * 2654435761 + 1;
  const next = () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
  const len = Math.floor(next() * 300);
  // Mostly text, some newlines, some NULs (what holes read as).
  return Buffer.from(Array.from({ length: len }, () => { const r = next(); return r < 0.08 ? 0x0a : r < 0.12 ? 0 : 0x61; }));
}

describe("lastLinesStart", () => {
  it("starts where tail -n starts when no line is over-long", () => {
    for (let seed = 0; seed < 40; seed++) {
      const data = randomLog(seed);
      withLog(data, (file, start) => {
        for (const n of [0, 1, 2, 5, 1000]) {
          const tail = spawnSync("tail", ["-n", String(n), file]).stdout;
          assert.deepEqual(start(n), { start: data.length - tail.length, cut: false }, `seed ${seed}, -n ${n}`);
        }
      });
    }
  });

  it("cuts the first over-long line to its end after its last NUL, and looks no further back", () => {
    for (let seed = 0; seed < 400; seed++) {
      const data = randomLog(seed);
      withLog(data, (_, start) => {
        for (const n of [1, 3, 7]) {
          for (const maxLine of [1, 4, 17, 64]) {
            assert.deepEqual(start(n, maxLine), expected(data, n, maxLine), `seed ${seed}, -n ${n}, max ${maxLine}`);
          }
        }
      });
    }
  });

  it("does the same across the chunks it reads, with lines of up to 100 KiB", () => {
    for (let seed = 0; seed < 30; seed++) {
      let x = seed + 1;
      const next = (m: number) => (x = (x * 1103515245 + 12345) % 2147483648) % m;
      const parts: Buffer[] = [];
      for (let k = next(6) + 1; k > 0; k--) {
        const line = Buffer.alloc(next(100_000), 0x61);
        if (next(3) === 0) line.fill(0, next(line.length + 1)); // a NUL run, as a hole reads
        if (next(2) === 0 && line.length > 0) line[next(line.length)] = 0;
        parts.push(line, Buffer.from(next(4) === 0 ? "" : "\n"));
      }
      const data = Buffer.concat(parts);
      withLog(data, (file, start) => {
        for (const n of [1, 2, 4]) {
          const tail = spawnSync("tail", ["-n", String(n), file], { maxBuffer: 2 ** 30 }).stdout;
          assert.deepEqual(start(n), { start: data.length - tail.length, cut: false }, `seed ${seed}, -n ${n}`);
          for (const maxLine of [1000, 65_536, 70_000]) {
            assert.deepEqual(start(n, maxLine), expected(data, n, maxLine), `seed ${seed}, -n ${n}, max ${maxLine}`);
          }
        }
      });
    }
  });

  it("looks through one line's window of a 1 TiB hole, not the whole of it", () => {
    const file = join(dir, "sparse");
    writeFileSync(file, "");
    truncateSync(file, 2 ** 40);
    const fd = openSync(file, "r");
    try {
      const t0 = Date.now();
      // All NULs: the cut line has nothing after its last NUL.
      assert.deepEqual(lastLinesStart(fd, 2 ** 40, 25), { start: 2 ** 40, cut: true });
      assert.ok(Date.now() - t0 < 10_000, "took more than 10 s: it read far more than one window");
    } finally {
      closeSync(fd);
    }
  });
});
