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


def _serve(out: str, conn) -> None:
    """The helper: import, wait for "go", export, answer ("ok", "") or ("error", message)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's; it cancels this helper

    def stop(signum, frame):  # a terminate: unwind, so that Store.export removes its temporary file
        raise SystemExit(1)

    signal.signal(signal.SIGTERM, stop)
    from .store import Store  # pandas: loaded while the shards run

    try:
        if conn.recv() != "go":
            return
        Store(Path(out)).export("csv")
        conn.send(("ok", ""))
    except (EOFError, OSError):
        return
    except Exception as exc:  # noqa: BLE001 - reported back; the driver exports again and raises the real error
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


class ExportProcess:
    """A helper process that writes ``out``'s CSV export when told (module docstring)."""

    def __init__(self, out: Path):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.out = Path(out)
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(str(out), child), name="autophagy-export", daemon=True)
        self.proc.start()
        child.close()
        self.sent = False

    def go(self) -> None:
        """Start the export (every result must be in the store)."""
        try:
            self.conn.send("go")
            self.sent = True
        except (OSError, ValueError):  # the helper is gone: wait() exports here
            self.sent = False

    def wait(self) -> None:
        """Block until metrics.csv and runs.csv are written (here, if the helper could not)."""
        ok = False
        if self.sent:
            try:
                ok = self.conn.recv()[0] == "ok"
            except (EOFError, OSError):
                ok = False
        self._close()
        if not ok:
            from .store import Store

            Store(self.out).export("csv")

    def cancel(self) -> None:
        """Stop the helper without exporting (waits for it: no temporary file left behind)."""
        if self.sent:  # an export under way: let it finish, its files are complete ones
            try:
                self.conn.recv()
            except (EOFError, OSError):
                pass
        else:
            try:
                self.conn.send("stop")
            except (OSError, ValueError):
                pass
        self._close()

    def _close(self) -> None:
        self.proc.join(timeout=60)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=10)
        self.conn.close()
