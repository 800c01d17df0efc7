"""metrics.csv and runs.csv written by a helper process while the CLI prints the table and draws the figure.

The export is ≈ 1 s of single-core work per million values and the figure about as long; in one process
they hold the GIL in turn (a thread gained nothing: 1.47 s against 1.54 s sequential on the Gillman toy's
store). ``ExportProcess(out)`` is started when the shards start: it imports pandas and the store then, and
waits. ``go()`` (after the last result is stored) starts ``Store(out).export()`` there; ``wait()`` returns
once it is written. Anything unusual (the helper failed or vanished) falls back to exporting in this
process, which raises the store's own one-line error. Same files, byte for byte: the same function writes
them. ``cancel()`` stops a helper that will not be needed (a run that failed or was interrupted).
"""
from __future__ import annotations

from pathlib import Path


def serve(out: str) -> None:
    """The helper (``python -c``: no multiprocessing bootstrap, no CLI import): import the store, wait for
    "go" on stdin, export, answer "ok" or "error <message>" on stdout."""
    import signal
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's; it cancels this helper

    def stop(signum, frame):  # a terminate: unwind, so that Store.export removes its temporary file
        raise SystemExit(1)

    signal.signal(signal.SIGTERM, stop)
    from .store import Store  # pandas: loaded while the shards run

    if sys.stdin.readline().strip() != "go":
        return
    try:
        Store(Path(out)).export("csv")
        answer = "ok"
    except Exception as exc:  # noqa: BLE001 - reported back; the driver exports again and raises the real error
        answer = f"error {type(exc).__name__}: {exc}".replace("\n", " ")
    sys.stdout.write(answer + "\n")
    sys.stdout.flush()


class ExportProcess:
    """A helper process that writes ``out``'s CSV export when told (module docstring)."""

    def __init__(self, out: Path):
        import os
        import subprocess
        import sys

        self.out = Path(out)
        env = dict(os.environ)  # this package first on the path, however this process found it
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from autophagy.export_process import serve; serve(sys.argv[1])",
             str(self.out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
            text=True)
        self.sent = False

    def go(self) -> None:
        """Start the export (every result must be in the store)."""
        try:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
            self.sent = True
        except (OSError, ValueError):  # the helper is gone: wait() exports here
            self.sent = False

    def wait(self) -> None:
        """Block until metrics.csv and runs.csv are written (here, if the helper could not)."""
        ok = False
        if self.sent:
            try:
                ok = self.proc.stdout.readline().strip() == "ok"
            except (OSError, ValueError):
                ok = False
        self._close()
        if not ok:
            from .store import Store

            Store(self.out).export("csv")

    def cancel(self) -> None:
        """Stop the helper without exporting (waits for it: no temporary file left behind)."""
        if self.sent:  # an export under way: let it finish, its files are complete ones
            try:
                self.proc.stdout.readline()
            except (OSError, ValueError):
                pass
        self._close()

    def _close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # stdin closed: a helper still waiting for "go" reads EOF and leaves
            except OSError:
                pass
        try:
            self.proc.wait(timeout=60)
        except Exception:  # noqa: BLE001 - a helper that will not stop is stopped
            self.proc.terminate()
            self.proc.wait(timeout=10)
