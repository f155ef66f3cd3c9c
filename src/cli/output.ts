// Writing a command's answer. A short answer goes out with one write(2):
// process.stdout would first load Node's stream machinery, ~5 ms that
// `bpm version`, `pid` and `list` pay for nothing. A stdout that cannot take
// it at once (a full non-blocking pipe) gets the rest through process.stdout.
import { writeSync } from "node:fs";

export function writeOut(text: string): void {
  const bytes = Buffer.from(text);
  let done = 0;
  try {
    while (done < bytes.length) done += writeSync(1, bytes, done);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
    process.stdout.write(bytes.subarray(done));
  }
}
