// Advice on valid settings that need something outside bpm.yml: a
// shutdown_timeout whose stop outlasts monit's default wait for a stop
// program needs a longer timeout in the job's monit file.
import type { Key, Problem } from "./problems.ts";
import type { JobConfig } from "./schema.ts";

/** How long monit lets a stop program run unless its control file says `with timeout N seconds`. */
export const MONIT_PROGRAM_TIMEOUT_MS = 30_000;
/** What a stop waits after QUIT before it kills (src/plan/book.ts STOP_TIMING.quitMs). */
const QUIT_WAIT_MS = 2_000;

/** One piece of advice per process whose stop may outlast monit's wait; at(path) gives the field's position. */
export function monitAdvice(config: JobConfig, at: (path: Key[]) => Problem): Problem[] {
  const advice: Problem[] = [];
  config.processes.forEach((p, i) => {
    const ms = p.shutdown_timeout;
    if (ms === undefined || ms + QUIT_WAIT_MS <= MONIT_PROGRAM_TIMEOUT_MS) return;
    const seconds = Math.ceil(ms / 1000);
    advice.push({
      ...at(["processes", i, "shutdown_timeout"]),
      message: `${seconds} s plus 2 s after QUIT is longer than monit waits for a stop program (${MONIT_PROGRAM_TIMEOUT_MS / 1000} s): ` +
        `end the job's stop program line in its monit file with "with timeout ${seconds + 5} seconds"`,
    });
  });
  return advice;
}
