"""Starts a command and measures the time until GET /v2/ on the given port answers (any HTTP
status). Prints the seconds and the process id; the process keeps running. Arguments: port, log
file, then the command."""

import http.client
import subprocess
import sys
import time


def main() -> None:
    port, log = int(sys.argv[1]), sys.argv[2]
    start = time.monotonic()
    proc = subprocess.Popen(sys.argv[3:], stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    while time.monotonic() - start < 30:
        if proc.poll() is not None:
            sys.exit(f"the server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/v2/")
            conn.getresponse().read()
            print(f"{time.monotonic() - start:.4f} {proc.pid}")
            return
        except OSError:
            time.sleep(0.001)
    sys.exit("the server did not answer within 30 s")


if __name__ == "__main__":
    main()
