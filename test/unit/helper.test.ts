// Extraction of the embedded helper: content-addressed, root-only, atomic,
// re-verified on every use.
import assert from "node:assert/strict";
import { closeSync, chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, truncateSync } from "node:fs";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ensureHelper, helperFileName, HELPER_VERSION } from "../../src/runtime/helper.ts";

const isRoot = process.getuid?.() === 0;

describe("helper extraction", { skip: isRoot ? false : "the helper must be root-owned: run as root" }, () => {
  const base = mkdtempSync(join(tmpdir(), "bpm-helper-"));
  const dir = join(base, "data", "bpm");
  // A stand-in that answers the version check like the real helper.
  const bytes = Buffer.from(`#!/bin/sh\necho '${HELPER_VERSION}'\n#` + "x".repeat(1000) + "\n");
  const file = join(dir, helperFileName(bytes));
  after(() => rmSync(base, { recursive: true, force: true }));

  it("writes a root-owned 0700 file named by its hash in a 0700 directory", () => {
    closeSync(ensureHelper(dir, bytes));
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(file).mode & 0o777, 0o700);
    assert.equal(statSync(file).uid, 0);
    assert.deepEqual(readFileSync(file), bytes);
    assert.deepEqual(readdirSync(dir), [helperFileName(bytes)], "no temp files left");
  });
  it("refuses a helper that does not answer its version check", () => {
    const broken = Buffer.from("#!/bin/sh\necho something else\n");
    assert.throws(() => ensureHelper(dir, broken), /does not run: printed "something else"/);
  });
  it("replaces a tampered copy", () => {
    const tampered = Buffer.from(bytes);
    tampered[5] = 0x41;
    writeFileSync(file, tampered);
    closeSync(ensureHelper(dir, bytes));
    assert.deepEqual(readFileSync(file), bytes);
  });
  it("replaces a truncated copy and one with the wrong mode", () => {
    truncateSync(file, 10);
    closeSync(ensureHelper(dir, bytes));
    assert.deepEqual(readFileSync(file), bytes);
    chmodSync(file, 0o777);
    closeSync(ensureHelper(dir, bytes));
    assert.equal(statSync(file).mode & 0o777, 0o700);
  });
  it("survives many processes extracting at once", async () => {
    rmSync(dir, { recursive: true });
    const script = `import { ensureHelper } from ${JSON.stringify(join(import.meta.dirname, "../../src/runtime/helper.ts"))};
      ensureHelper(${JSON.stringify(dir)}, Buffer.from(${JSON.stringify(bytes.toString())}));`;
    const runs = Array.from({ length: 8 }, () => new Promise<number>((res) => {
      const c = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: "inherit" });
      c.on("exit", (code) => res(code ?? 1));
    }));
    assert.deepEqual(await Promise.all(runs), Array(8).fill(0));
    assert.deepEqual(readFileSync(file), bytes);
    assert.deepEqual(readdirSync(dir), [helperFileName(bytes)]);
  });
});
