import { command, CommandError, jobArgs, requireJob } from "../command.ts";

export default command({
  meta: { name: "shell", description: "Open a shell inside a running process's container" },
  args: {
    ...jobArgs,
  },
  run({ args }) {
    requireJob(args);
    throw new CommandError("bpm shell is not available in this build yet");
  },
});
