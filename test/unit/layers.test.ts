// src/plan decides as plain data: what it needs of the host comes in as
// arguments, gathered by src/runtime. This keeps it so: no module of
// src/plan may import one of src/runtime, not even for a type.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const src = resolve(dirname(fileURLToPath(import.meta.url)), "../../src");

/** Every module a file names: import/export ... from "x", import "x", import("x"). */
function specifiers(text: string): string[] {
  const patterns = [/\b(?:import|export)\b[^;"'`]*?\bfrom\s*["']([^"']+)["']/g, /\bimport\s*["']([^"']+)["']/g, /\bimport\s*\(\s*["']([^"']+)["']/g];
  return patterns.flatMap((re) => [...text.matchAll(re)].map((m) => m[1]!));
}

describe("src/plan imports nothing from src/runtime", () => {
  it("finds the imports it scans for", () => {
    const text = `import type { A } from "../runtime/a.ts";\nimport {\n  b,\n} from './b.ts';\nexport { c } from "../c.ts";\nimport "./d.ts";\nconst e = await import("../runtime/e.ts");\n`;
    assert.deepEqual(specifiers(text).sort(), ["../c.ts", "../runtime/a.ts", "../runtime/e.ts", "./b.ts", "./d.ts"]);
  });

  it("holds for every module of src/plan", () => {
    const plan = join(src, "plan");
    const files = readdirSync(plan, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
    assert.ok(files.length > 0, `no modules found in ${plan}`);
    const offending: string[] = [];
    for (const f of files) {
      const file = join(plan, f);
      for (const spec of specifiers(readFileSync(file, "utf8"))) {
        if (!spec.startsWith(".")) continue;
        const target = relative(src, resolve(dirname(file), spec));
        if (target === "runtime" || target.startsWith("runtime/")) offending.push(`src/plan/${f} imports ${spec}`);
      }
    }
    assert.deepEqual(offending, [], "src/plan must take host facts as data, not import src/runtime");
  });
});
