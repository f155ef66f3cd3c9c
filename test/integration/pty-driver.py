# Drives a command on a pseudo-terminal the way an operator at a terminal
# would: sets the window size, types lines, waits for output, resizes.
# Usage: pty-driver.py STEPS_JSON -- COMMAND...
# STEPS: [["size", rows, cols], ["send", text], ["expect", regex], ["sleep", s]]
# Prints everything the terminal showed; exits with the command's status.
import json, os, pty, re, select, struct, sys, time, fcntl, termios

steps = json.loads(sys.argv[1])
argv = sys.argv[sys.argv.index("--") + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)

seen = b""
def read_some(timeout):
    global seen
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return False
    try:
        data = os.read(fd, 65536)
    except OSError:
        return None
    if not data:
        return None
    seen += data
    return True

for step in steps:
    kind = step[0]
    if kind == "size":
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", step[1], step[2], 0, 0))
    elif kind == "send":
        os.write(fd, step[1].encode())
    elif kind == "sleep":
        time.sleep(step[1])
    elif kind == "expect":
        deadline = time.time() + 20
        while not re.search(step[1].encode(), seen):
            if time.time() > deadline or read_some(deadline - time.time()) is None:
                sys.stdout.write(seen.decode(errors="replace"))
                sys.stderr.write("pty-driver: never saw %r\n" % step[1])
                sys.exit(99)

deadline = time.time() + 20
while time.time() < deadline and read_some(deadline - time.time()) is not None:
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
