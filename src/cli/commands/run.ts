import { command, CommandError, jobArgs, repeatedFlag, requireJob } from "../command.ts";
import { RunFlagError, withRunFlags } from "../../config/runflags.ts";
import { processConfig } from "../../lifecycle/config.ts";
import { jobContext, logged } from "../../lifecycle/job.ts";
import { run, runFailure } from "../../lifecycle/run.ts";

export default command({
  meta: { name: "run", description: "Run a job's process in the foreground and exit with its status (errands)" },
  args: {
    ...jobArgs,
    volume: { type: "string", alias: "v", valueHint: "PATH[:OPTS]", description: "extra volume; OPTS: writable,mount_only,allow_executions,shared; repeatable" },
    env: { type: "string", alias: "e", valueHint: "KEY=VALUE", description: "extra environment; repeatable, the last of a name wins" },
  },
  async run({ args, rawArgs }) {
    const ctx = jobContext(requireJob(args), args.process);
    await logged(ctx, "run", async () => {
      const { proc: configured } = await processConfig(ctx, "run");
      let proc;
      try {
        proc = withRunFlags(configured, repeatedFlag(rawArgs, "volume", "v"), repeatedFlag(rawArgs, "env", "e"), { root: ctx.root, job: ctx.paths.job });
      } catch (e) {
        if (e instanceof RunFlagError) throw new CommandError(e.message);
        throw e;
      }
      const result = await run(ctx, proc);
      if (result.status !== 0) throw new CommandError(runFailure(result), result.status);
    });
  },
});
