import { command, jobArgs, requireJob } from "../command.ts";
import { processConfig } from "../../lifecycle/config.ts";
import { jobContext, logged } from "../../lifecycle/job.ts";
import { start } from "../../lifecycle/start.ts";

export default command({
  meta: { name: "start", description: "Start a job's process, detached, isolated as configured in its bpm.yml" },
  args: jobArgs,
  async run({ args }) {
    const ctx = jobContext(requireJob(args), args.process);
    await logged(ctx, "start", async () => start(ctx, (await processConfig(ctx, "start")).proc));
  },
});
