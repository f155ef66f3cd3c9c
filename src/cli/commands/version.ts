import { writeOut } from "../output.ts";
import { command, UsageError } from "../command.ts";

declare const BPM_VERSION: string;
export const VERSION = typeof BPM_VERSION === "string" ? BPM_VERSION : "dev";

export default command(
  {
    meta: { name: "version", description: "Print bpm's version" },
    run({ args }) {
      // `bpm version extra`: the usage and a failure, as the original.
      if ((args._ as string[]).length > 0) throw new UsageError("");
      writeOut(`${VERSION}\n`);
    },
  },
  { needsRoot: false },
);
