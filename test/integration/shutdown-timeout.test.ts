// shutdown_timeout, beyond the original: the wait between the shutdown
// signal and QUIT, recorded at start (stop reads no bpm.yml), 15 s by
// default. Each job writes down, in its own log, when TERM and QUIT reached
// it; the timings asserted are generous bounds around those.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { bashJob, skipUnlessRoot, useRoot, type Root } from "./harness.ts";

const succeeds = (res: { status: number | null; stdout: string; stderr: string }) => assert.equal(res.status, 0, `${res.stdout}${res.stderr}`);

/** A job that needs `seconds` to shut down on TERM, then exits 7; QUIT is noted and ends it with 3.
 * It waits on its children, which a trapped signal interrupts at once (no polling, no forks to time). */
const slowToStop = (seconds: number) =>
  `trap 'echo "TERM \${EPOCHREALTIME/./}"; sleep ${seconds} & wait $!; echo "done \${EPOCHREALTIME/./}"; exit 7' TERM; ` +
  `trap 'echo "QUIT \${EPOCHREALTIME/./}"; exit 3' QUIT; ` +
  `echo up; while :; do sleep 1000 & wait $!; done`;

/** When the job's log says it got `what` (epoch ms), or null. */
const noted = (r: Root, job: string, what: string) => {
  const m = new RegExp(`^${what} (\\d+)$`, "m").exec(r.log(job));
  return m ? Number(m[1]) / 1000 : null;
};
/** The VM suite runs on an emulated machine: waits are generous. */
const UP_MS = 60_000;
const bpmLog = (r: Root, job: string) => readFileSync(join(r.path, "sys", "log", job, "bpm.log"), "utf8");
const lastExit = (r: Root, job: string) =>
  (JSON.parse(r.bpm("list", "--json").stdout) as Array<{ name: string; lastExit: { code: number | null; signal: number | null } | null }>).find((x) => x.name === job)!.lastExit;

/** Stops the job; returns when the stop returned (epoch ms, the clock the job notes its signals by).
 * Timings are taken from the signals the job noted: on a slow machine bpm's own start-up before
 * it signals can take seconds, and is not what these tests are about. */
async function stopped(r: Root, job: string): Promise<number> {
  const res = await r.bpmAsync("stop", job);
  assert.equal(res.status, 0, res.stderr);
  return Date.now();
}

describe("shutdown_timeout", { skip: skipUnlessRoot, concurrency: true }, () => {
  const root = useRoot("shutdown-timeout");

  it("lets a job that needs 20 s on TERM finish by itself with shutdown_timeout: 25s, even once bpm.yml has broken", async () => {
    const r = root();
    const config = bashJob("patient", slowToStop(20), "  shutdown_timeout: 25s\n");
    r.job("patient", config);
    succeeds(r.bpm("start", "patient"));
    await r.waitForLog("patient", "up", UP_MS);
    // stop reads what start recorded, not the file.
    r.job("patient", "processes: [this is not\n");
    const returned = await stopped(r, "patient");
    r.job("patient", config); // for list
    const term = noted(r, "patient", "TERM")!;
    const done = noted(r, "patient", "done")!;
    assert.ok(term && done, r.log("patient"));
    assert.ok(done - term >= 19_500, `the job's own shutdown ran its 20 s: ${done - term} ms`);
    assert.equal(noted(r, "patient", "QUIT"), null, "no QUIT");
    const exit = lastExit(r, "patient");
    assert.equal(exit?.code, 7, "its own exit status");
    assert.equal(exit?.signal, null);
    // stop saw the job go before QUIT was due ("quit" otherwise, even for a job already gone).
    assert.doesNotMatch(bpmLog(r, "patient"), /forceful-shutdown/);
    assert.match(bpmLog(r, "patient"), /"bpm\.stop\.complete".*"how":"exited"/);
    assert.ok(returned >= done, "stop returned once the job was gone");
  });

  it("sends QUIT 15 s after TERM by default, and to a job whose state an older bpm wrote (no timeout recorded)", async () => {
    const r = root();
    r.job("default", bashJob("default", slowToStop(20)));
    r.job("older", bashJob("older", slowToStop(20), "  shutdown_timeout: 25s\n"));
    for (const job of ["default", "older"]) {
      succeeds(r.bpm("start", job));
      await r.waitForLog(job, "up", UP_MS);
    }
    const state = join(r.path, "sys", "run", "bpm", "older", "older.state");
    writeFileSync(state, readFileSync(state, "utf8").replace(/^shutdown-timeout-ms .*\n/m, ""));
    await Promise.all(["default", "older"].map((job) => stopped(r, job)));
    for (const job of ["default", "older"]) {
      const term = noted(r, job, "TERM")!;
      const quit = noted(r, job, "QUIT")!;
      assert.ok(term && quit, r.log(job));
      assert.ok(quit - term >= 14_500 && quit - term < 18_000, `${job}: QUIT ${quit - term} ms after TERM`);
      assert.equal(noted(r, job, "done"), null, `${job} was cut short`);
      assert.equal(lastExit(r, job)?.code, 3, `${job} exited from its QUIT handler`);
      assert.match(bpmLog(r, job), /forceful-shutdown.*"how":"quit"/, "QUIT ended it, no kill");
    }
  });

  it("returns the moment the job is gone, however long shutdown_timeout is", async () => {
    const r = root();
    r.job("prompt", bashJob("prompt", "trap 'echo \"TERM ${EPOCHREALTIME/./}\"; exit 0' TERM; echo up; while :; do sleep 1000 & wait $!; done", "  shutdown_timeout: 2m\n"));
    succeeds(r.bpm("start", "prompt"));
    await r.waitForLog("prompt", "up", UP_MS);
    const returned = await stopped(r, "prompt");
    const term = noted(r, "prompt", "TERM")!;
    assert.ok(term, r.log("prompt"));
    assert.match(bpmLog(r, "prompt"), /"bpm\.stop\.complete".*"how":"exited"/);
    // Seconds on this machine; a generous bound for the emulated VM on a busy host, far below the 2 minutes.
    assert.ok(returned - term < 60_000, `stop returned ${returned - term} ms after TERM`);
    assert.equal(lastExit(r, "prompt")?.code, 0);
  });
});
