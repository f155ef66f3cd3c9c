import { command, CommandError, jobArgs, requireJob } from "../command.ts";

export default command({
  meta: { name: "trace", description: "Attach strace to a running process" },
  args: {
    ...jobArgs,
  },
  run({ args }) {
    requireJob(args);
    throw new CommandError("bpm trace is not available in this build yet");
  },
});
