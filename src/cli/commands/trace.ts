import { command, CommandError, jobArgs, requireJob } from "../command.ts";
import { processConfig } from "../../lifecycle/config.ts";
import { jobContext, logged } from "../../lifecycle/job.ts";
import { run, runFailure } from "../../lifecycle/run.ts";
import { startupTracer, traceRunning } from "../../lifecycle/trace.ts";

export default command({
  meta: { name: "trace", description: "strace a running process, or (--startup) start it in the foreground traced from its first instruction" },
  args: {
    ...jobArgs,
    startup: { type: "boolean", description: "start the process in the foreground like `run`, traced from before its first instruction" },
    output: { type: "string", alias: "o", valueHint: "FILE", description: "write the trace to this file instead of the terminal" },
  },
  async run({ args }) {
    const ctx = jobContext(requireJob(args), args.process);
    return logged(ctx, "trace", async () => {
      if (!args.startup) return traceRunning(ctx, args.output);
      const { proc } = await processConfig(ctx, "trace");
      const tracer = startupTracer(args.output);
      const result = await run(ctx, proc, { beforeExec: tracer.beforeExec, event: "trace" });
      await tracer.done();
      if (result.status !== 0) throw new CommandError(runFailure(result), result.status);
      return 0;
    });
  },
});
