import { command, jobArgs, requireJob } from "../command.ts";
import { jobContext, logged } from "../../lifecycle/job.ts";
import { shell } from "../../lifecycle/shell.ts";

export default command({
  meta: { name: "shell", description: "Open /bin/bash inside a running process's container, as the job; exits with the shell's status" },
  args: jobArgs,
  async run({ args }) {
    const ctx = jobContext(requireJob(args), args.process);
    return logged(ctx, "shell", () => shell(ctx));
  },
});
