"""Newsletter send: end-to-end personalised send against a bare smtplib loop, in the same run.

ours:     render the sample newsletter for one audience (Jinja2 + css-inline), then
          EmailChannel.publish(): per-recipient ledger rows (SQLite), the byte template filled per
          recipient (signed unsubscribe and click links, To, Message-ID, List-Unsubscribe), SMTP
          over reused connections (driven in turn by one thread, the next envelope behind each
          final ".") with one ledger commit per message (the `sending` mark before the final
          "."), results recorded.
baseline: a bare smtplib loop (`sendmail` per message, connections reused, the same number of
          connections) sending pre-built messages of the same size to the same sink.

Sink: postfix's `smtp-sink` (about 5x faster than aiosmtpd, which would bound both sides). The
script fetches Debian's `postfix` package with `apt-get download` and unpacks only its files
(`dpkg -x`) into bench/.cache/postfix: postfix itself is never installed or started. Without apt,
it falls back to aiosmtpd (say --sink aiosmtpd to force it).

Each measurement runs in a child process, so its peak RSS is its own.

    .venv/bin/python bench/newsletter.py [--sizes 10000 100000] [--connections 2] [--repeat 3] [--sink smtp-sink|aiosmtpd]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CACHE = REPO / "bench" / ".cache" / "postfix"
UTC = dt.timezone.utc
SECRET = "bench-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smtp_sink_binary() -> Path | None:
    binary = CACHE / "usr" / "sbin" / "smtp-sink"
    if binary.exists():
        return binary
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        return None
    download = CACHE.parent / "download"
    download.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["apt-get", "download", "postfix"], cwd=download, check=True, capture_output=True)
        deb = next(download.glob("postfix_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(CACHE)], check=True, capture_output=True)
    except (subprocess.CalledProcessError, StopIteration):
        return None
    return binary if binary.exists() else None


class Sink:
    def __init__(self, kind: str) -> None:
        self.port = free_port()
        self.kind = kind
        self.proc: subprocess.Popen | None = None
        self.controller = None
        binary = smtp_sink_binary() if kind == "smtp-sink" else None
        if binary is not None:
            env = {**os.environ, "LD_LIBRARY_PATH": str(CACHE / "usr" / "lib" / "postfix")}
            user = ["-u", "nobody"] if os.geteuid() == 0 else []
            self.proc = subprocess.Popen([str(binary), *user, f"127.0.0.1:{self.port}", "1024"], env=env)
        else:
            from aiosmtpd.controller import Controller

            class Discard:
                async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
                    return "250 OK"

            self.kind = "aiosmtpd"
            self.controller = Controller(Discard(), hostname="127.0.0.1", port=self.port)
            self.controller.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
        if self.controller:
            self.controller.stop()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def newsletter_renderer():  # type: ignore[no-untyped-def]
    """The sample programme loaded and checked (not timed: that is `check`, not sending), and a
    function that renders its newsletter for one audience (Jinja2 + css-inline; timed)."""
    from dissemination.check import run_check
    from dissemination.render import Renderer
    from dissemination.render.variants import planned_variants

    result = run_check(REPO)
    renderer = Renderer(result.project)
    for campaign, post, channel, audience, slot in planned_variants(result.project, result.slots):
        if channel == "nieuwsbrief":
            def render() -> dict:
                rendered, _ = renderer.render(campaign, post, channel, audience, slot)
                return {"text": rendered.text, "html": rendered.html, "subject": rendered.subject,
                        "link": rendered.link, "audiences": [audience]}
            return render
    raise SystemExit("the sample content has no newsletter")


def seed_subscribers(db: Path, n: int, list_id: str) -> None:
    """n active subscribers of `list_id` straight into the ledger's SQLite file, in batches (not
    timed; one in 20 consented to per-person click tracking)."""
    import sqlite3

    con = sqlite3.connect(db)
    stamp = "2026-01-15 00:00:00.000000"
    for start in range(0, n, 10_000):
        stop = min(start + 10_000, n)
        con.executemany("INSERT INTO subscribers (id, address, name, language, tracking, state, created_at, updated_at) "
                        "VALUES (?, ?, ?, 'nl', ?, 'active', ?, ?)",
                        ((i + 1, f"lid{i}@example.org", f"Lid {i} Tiëlemans", i % 20 == 0, stamp, stamp)
                         for i in range(start, stop)))
        con.executemany("INSERT INTO subscriptions (subscriber_id, list, state, consent_source, consent_at, updated_at) "
                        "VALUES (?, ?, 'active', 'Aanmelding website', ?, ?)",
                        ((i + 1, list_id, stamp, stamp) for i in range(start, stop)))
        con.commit()
    con.close()


def child_ours(n: int, connections: int, port: int) -> dict:
    from dissemination.ledger import Ledger, PlannedItem
    from dissemination.publish.channels.email import EmailSettings
    from dissemination.publish.channels.email.sending import EmailSender
    from dissemination.publish.recipients import Recipient

    os.environ["DISSEMINATION_UNSUBSCRIBE_SECRET"] = SECRET
    config = EmailSettings(kind="email", host="127.0.0.1", port=port, security="none",
                            from_address="nieuwsbrief@example.org", from_name="Nieuwsbrief SI Logistiek",
                            web_url="https://nieuwsbrief.example.org", rate_per_minute=10_000_000,
                            connections=connections)

    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(f"sqlite:///{tmp}/ledger.db")
        now = dt.datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
        render = newsletter_renderer()
        rendering = time.perf_counter()
        payload = render()
        render_seconds = time.perf_counter() - rendering
        # The recipients come from the subscriber database, streamed (seeding is not timed).
        seed_subscribers(Path(tmp) / "ledger.db", n, payload["audiences"][0])
        item = PlannedItem("nieuwsbrief-kwartaal", "bench", "mkb", "nieuwsbrief", 0, now, "Europe/Amsterdam", payload)
        ledger.apply_plan([item], now)
        [claim] = ledger.claim_due("bench", now)
        channel = EmailSender("nieuwsbrief", config, Path(tmp))
        channel.bind(ledger, lambda: now, dt.timedelta(minutes=5))
        assert channel.preflight().ok
        started_send = time.perf_counter()
        channel.publish(claim)
        seconds = time.perf_counter() - started_send + render_seconds
        counts = channel.deliveries.counts(claim.id)  # type: ignore[union-attr]
        assert counts == {"sent": n}, counts
        one = {"lid0@example.org": Recipient("lid0@example.org", "Lid 0 Tiëlemans", True)}
        size = len(channel._message(channel_run_stub(channel, claim, payload, one), "lid0@example.org"))
        return {"seconds": seconds, "send_seconds": time.perf_counter() - started_send, "render_seconds": render_seconds,
                "rss_mb": peak_rss_mb(), "message_bytes": size}


def channel_run_stub(channel, claim, payload, recipients):  # type: ignore[no-untyped-def]
    """One message as sent, to size the baseline's pre-built messages alike."""
    import queue
    import threading as th

    from dissemination.publish import mime
    from dissemination.publish.channels.email.sending import _Run
    from dissemination.publish.pacing import RateLimit
    from dissemination.render.newsletter import UNSUBSCRIBE_PLACEHOLDER

    template = mime.build_template(
        from_address=channel.config.from_address, from_name=channel.config.from_name, reply_to=None,
        subject=payload["subject"], text=payload["text"], html_body=payload["html"], list_id=channel.list_id,
        list_name=channel.list_name, placeholder=UNSUBSCRIBE_PLACEHOLDER, track_clicks=True,
        now=dt.datetime.now(UTC))
    run = _Run(claim, template, recipients, queue.Queue(), RateLimit(1), th.Event(), [], [0])
    run.anonymous_clicks = {slot: mime.qp_value(f"{channel.base_url}/klik/{channel.signer.click(claim.id, url)}")
                            for slot, url in template.clicks.items()}
    return run


def child_bare(n: int, connections: int, port: int, size: int) -> dict:
    body = ("x" * 75 + "\r\n") * (size // 77)
    prebuilt = [(f"Subject: bench {i}\r\nTo: lid{i}@example.org\r\n\r\n" + body).encode() for i in range(100)]
    started = time.perf_counter()
    per = [n // connections + (1 if c < n % connections else 0) for c in range(connections)]

    def loop(count: int, offset: int) -> None:
        conn = smtplib.SMTP("127.0.0.1", port)
        for i in range(count):
            conn.sendmail("nieuwsbrief@example.org", [f"lid{offset + i}@example.org"], prebuilt[i % 100])
        conn.quit()

    threads = [threading.Thread(target=loop, args=(count, sum(per[:c]))) for c, count in enumerate(per)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"seconds": time.perf_counter() - started, "rss_mb": peak_rss_mb()}


def run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--sink", choices=["smtp-sink", "aiosmtpd"], default="smtp-sink")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds; medians are reported")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n, connections, port, *rest = args.child
        if kind == "ours":
            result = child_ours(int(n), int(connections), int(port))
        else:
            result = child_bare(int(n), int(connections), int(port), int(rest[0]))
        print(json.dumps(result))
        return
    sink = Sink(args.sink)
    try:
        print(f"sink: {sink.kind} on 127.0.0.1:{sink.port}; {args.connections} connection(s)")
        for n in args.sizes:
            rounds = []
            for _ in range(args.repeat):  # alternating, so both sides see the same machine load
                ours = run_child("ours", str(n), str(args.connections), str(sink.port))
                bare = run_child("bare", str(n), str(args.connections), str(sink.port), str(ours["message_bytes"]))
                rounds.append((ours, bare, bare["seconds"] / ours["seconds"]))
            ours_rate = statistics.median(n / o["seconds"] * 60 for o, _, _ in rounds)
            bare_rate = statistics.median(n / b["seconds"] * 60 for _, b, _ in rounds)
            ratio = statistics.median(r for _, _, r in rounds)
            ours = rounds[0][0]
            print(f"{n:>7} recipients, median of {args.repeat}: ours {ours_rate:,.0f}/min (render "
                  f"{ours['render_seconds'] * 1000:.0f} ms, peak RSS {max(o['rss_mb'] for o, _, _ in rounds):.0f} MB, "
                  f"{ours['message_bytes']:,} bytes/message) | bare smtplib {bare_rate:,.0f}/min (peak RSS "
                  f"{max(b['rss_mb'] for _, b, _ in rounds):.0f} MB) | ratio {ratio:.2f} "
                  f"(rounds: {', '.join(f'{r:.2f}' for _, _, r in rounds)})", flush=True)
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
