# Runs the one command the host asked for (/run/bpm-vm/command.json) with
# its working directory and environment, writes the command's exit status for
# the host, and powers off. In the bare mode it is the VM's pid 1 once the
# host's filesystem is its root, and reaps every orphan as a real init does;
# in systemd mode it is a service of systemd's (test/vm/systemd/; runit.service
# in test/vm/jammy/ for the jammy boot).
import json, os, sys, termios

RUN = "/run/bpm-vm"

def main():
    # The console is a serial line: no \r added to the command's output.
    try:
        attrs = termios.tcgetattr(1)
        attrs[1] &= ~termios.ONLCR
        termios.tcsetattr(1, termios.TCSANOW, attrs)
    except termios.error:
        pass
    # How long the guest took to get here: the kernel's, and systemd's, boot.
    with open("/proc/uptime") as f, open(os.path.join(RUN, "booted"), "w") as out:
        out.write(f.read().split()[0] + "\n")
    with open(os.path.join(RUN, "command.json")) as f:
        spec = json.load(f)
    pid = os.fork()
    if pid == 0:
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.setsid()
        os.chdir(spec["cwd"])
        os.execvpe(spec["argv"][0], spec["argv"], spec["env"])
    status = None
    while status is None:
        try:
            child, wstatus = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if child == pid:
            status = os.waitstatus_to_exitcode(wstatus)
            status = 128 - status if status < 0 else status
    with open(os.path.join(RUN, "status"), "w") as f:
        f.write("%d\n" % (status if status is not None else 255))
    os.sync()

try:
    main()
except BaseException as e:  # whatever happens, the host hears of it and the VM ends
    sys.stderr.write("bpm-vm guest: %r\n" % (e,))
finally:
    sys.stdout.flush()
    import ctypes
    ctypes.CDLL(None).reboot(0x4321FEDC)  # RB_POWER_OFF
