import { command, jobArgs, requireJob } from "../command.ts";
import { jobContext, logged } from "../../lifecycle/job.ts";
import { stop } from "../../lifecycle/stop.ts";

export default command({
  meta: { name: "stop", description: "Stop a job's process: shutdown signal, 15 s, QUIT, 2 s, then kill" },
  args: jobArgs,
  async run({ args }) {
    const ctx = jobContext(requireJob(args), args.process, "wanted");
    await logged(ctx, "stop", () => stop(ctx));
  },
});
