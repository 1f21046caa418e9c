"""CERT user-day samples from a large ``http.csv``: anomalykit's indexed loader vs ``pandas.read_csv``.

Writes a CERT r4.2-layout release under a temporary folder (``http.csv`` of each requested size,
about 86 http events per user-day as in r4.2, one Logon/Logoff per user-day, a few device,
email and file rows, LDAP, psychometric and an answers package with one insider; writing is not
timed), then measures, each run in a fresh child process, in alternating order for
``--repeats`` rounds:

* ``pandas.read_csv(http.csv)``: the peer, parsing the file into a DataFrame (default engine);
* anomalykit, cached index: ``anomalykit.load`` then every user-day ``Sample`` (typed
  ``EventLog`` of the user's events from all activity files, per-event labels, LDAP and
  psychometric meta) through ``loader.iter_samples``;
* the same through plain ``for sample in dataset`` (the generic row-at-a-time path);
* ``iter_samples`` again ("reading all text"), reading every byte of each sample's ``url`` and ``content`` (the index
  is memory-mapped: bytes a consumer does not read are never paged in, so the plain lines do
  not pay for them; this one does, and its peak RSS counts the mapped pages it touched);
* anomalykit, first load: the index is deleted before the run (not timed), so the run parses
  every activity file, builds the index and then produces every sample as above.

Each child reports events, seconds (from ``anomalykit.load``/``read_csv`` to the last sample or
row; imports excluded on both sides), its peak resident memory (``ru_maxrss``: interpreter,
libraries, and the touched pages of memory-mapped files) and its peak resident anonymous memory
(``RssAnon``: the heap, which mapped pages do not count in; for anomalykit sampled every 256
samples). Lines give the median over the rounds (min-max in brackets) and the ratio of medians
against ``pandas.read_csv`` of the same size; the pandas spread shows how noisy the machine is.
The data is deleted at the end (``--keep`` keeps it).

    python benchmarks/bench_cert_stream.py --sizes-gb 0.5 2 --repeats 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

EVENTS_PER_USER_DAY = 86  # r4.2: 28.4 M http rows over 1,000 users and about 330 working days
FIRST_DAY = datetime(2010, 1, 4)
_WORDS = [f"{w}{i}" for i, w in enumerate(
    "remain representatives spy bait covert middle systems july during difficulty overall project report budget "
    "quarter meeting network security leak upload career resume salary interview".split() * 20)]


def _clock_strings() -> list[str]:
    return [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]


def write_release(root: Path, http_bytes: int, n_users: int, seed: int = 0) -> dict[str, int]:
    """Write the release; returns row counts per file."""
    rng = np.random.default_rng(seed)
    release = root / "r4.2"
    (release / "LDAP").mkdir(parents=True, exist_ok=True)
    users = [f"{chr(65 + i % 26)}{chr(65 + (i // 26) % 26)}{chr(65 + (i // 676) % 26)}{i:04d}" for i in range(n_users)]
    pcs = [f"PC-{i:04d}" for i in range(n_users)]
    contents = [" ".join(rng.choice(_WORDS, int(rng.integers(40, 70)))) for _ in range(2048)]
    urls = [f"http://{rng.choice(['msn.com', 'yahoo.com', 'cnn.com', 'wikipedia.org'])}/{w}/{k}.htm"
            for k, w in enumerate(rng.choice(_WORDS, 1024))]
    clock = _clock_strings()
    counts = {"http": 0, "logon": 0}
    written = 0
    day = 0
    event_id = 0
    insider = users[0]
    malicious: list[str] = []
    with open(release / "http.csv", "w", newline="\n") as http, open(release / "logon.csv", "w", newline="\n") as logon:
        http.write("id,date,user,pc,url,content\n")
        logon.write("id,date,user,pc,activity\n")
        while written < http_bytes:
            date = (FIRST_DAY + timedelta(days=day)).strftime("%m/%d/%Y")
            n = n_users * EVENTS_PER_USER_DAY
            seconds = np.sort(rng.integers(7 * 3600, 18 * 3600, n))
            who = rng.integers(0, n_users, n)
            content = rng.integers(0, len(contents), n)
            url = rng.integers(0, len(urls), n)
            lines = [
                f"{{H{(event_id + i) % 10}T{(event_id + i) // 10 % 10}-P{event_id + i:08d}QQ-{i % 10000:04d}HTTP}},"
                f"{date} {clock[s]},{users[u]},{pcs[u]},{urls[r]},{contents[c]}\n"
                for i, (s, u, c, r) in enumerate(zip(seconds.tolist(), who.tolist(), content.tolist(), url.tolist()))
            ]
            if day == 1:
                first = next(i for i, u in enumerate(who.tolist()) if u == 0)
                malicious.append("http," + lines[first].rstrip("\n"))
            block = "".join(lines)
            http.write(block)
            written += len(block)
            counts["http"] += n
            event_id += n
            sessions = []
            for u in range(n_users):
                sessions.append((6 * 3600 + u % 3600, u, "Logon"))
                sessions.append((19 * 3600 + u % 3600, u, "Logoff"))
            sessions.sort()
            logon.write("".join(f"{{L{k % 10}G{k // 10 % 10}-N{event_id + k:08d}ON-{k % 10000:04d}LOGN}},"
                                f"{date} {clock[s]},{users[u]},{pcs[u]},{a}\n" for k, (s, u, a) in enumerate(sessions)))
            event_id += len(sessions)
            counts["logon"] += len(sessions)
            day += 1
    start = FIRST_DAY.strftime("%m/%d/%Y")
    (release / "device.csv").write_text(f"id,date,user,pc,activity\n{{D1V1-C0NN00EC-0001DEVC}},{start} 08:00:00,"
                                        f"{insider},{pcs[0]},Connect\n")
    (release / "email.csv").write_text("id,date,user,pc,to,cc,bcc,from,size,attachments,content\n"
                                       f"{{E1M1-A0LL00EM-0001MAIL}},{start} 09:00:00,{users[1]},{pcs[1]},"
                                       f"a.b.c@dtaa.com,,,d.e.f@dtaa.com,1200,0,hello there\n")
    (release / "file.csv").write_text(f"id,date,user,pc,filename,content\n{{F1L1-E0FI00LE-0001FILE}},"
                                      f"{start} 10:00:00,{users[2]},{pcs[2]},R:\\A.doc,D0-CF-11-E0 words\n")
    (release / "psychometric.csv").write_text("employee_name,user_id,O,C,E,A,N\n" + "".join(
        f"Name {u},{u},{10 + i % 40},{20 + i % 30},{30 + i % 20},{40 - i % 20},{15 + i % 25}\n" for i, u in enumerate(users)))
    (release / "LDAP" / "2010-01.csv").write_text(
        "employee_name,user_id,email,role,business_unit,functional_unit,department,team,supervisor\n" + "".join(
            f"Name {u},{u},{u}@dtaa.com,Salesman,1,5 - SalesAndMarketing,2 - Sales,3 - RegionalSales,Name {users[0]}\n"
            for u in users))
    answers = root / "answers" / "r4.2-1"
    answers.mkdir(parents=True, exist_ok=True)
    (answers / f"r4.2-1-{insider}.csv").write_text("\n".join(malicious) + "\n")
    (root / "answers" / "insiders.csv").write_text(
        f"dataset,scenario,details,user,start,end\n4.2,1,r4.2-1-{insider}.csv,{insider},"
        f"{start} 00:00:00,{start} 23:59:59\n")
    return counts


# --------------------------------------------------------------------------------------------
# measurements, each run in a fresh child process


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _anonymous_mb() -> float:
    """Resident anonymous memory now (heap, not pages of mapped files), in MB; 0 where unknown."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _run_pandas(root: str, queue) -> None:
    import pandas as pd

    start = time.perf_counter()
    frame = pd.read_csv(Path(root) / "r4.2" / "http.csv")
    queue.put((len(frame), time.perf_counter() - start, _peak_mb(), _anonymous_mb(), len(frame)))


def _text_checksum(column) -> int:
    """Sum of every byte of a string column's values: reads them all, with one numpy call per chunk."""
    total = 0
    for chunk in column.chunks:
        _, offsets, data = chunk.buffers()
        if data is None or len(chunk) == 0:
            continue
        bounds = np.frombuffer(offsets, np.int32)
        first, last = bounds[chunk.offset], bounds[chunk.offset + len(chunk)]
        total += int(np.frombuffer(data, np.uint8)[first:last].sum(dtype=np.uint64))
    return total


def _run_anomalykit(root: str, queue, fast: bool = True, touch: bool = False) -> None:
    import warnings

    import polars  # noqa: F401 - libraries are imported before timing, as for pandas

    import anomalykit
    import anomalykit.loaders.cert  # noqa: F401

    anomalykit.list_datasets()  # imports every registered loader module
    warnings.simplefilter("ignore")  # the one-insider release has unmatched-answer notes
    start = time.perf_counter()
    dataset = anomalykit.load("cert", root, progress=False)
    samples = dataset.loader.iter_samples(dataset.manifest) if fast else iter(dataset)
    events = count = malicious = characters = 0
    peak_anonymous = _anonymous_mb()
    for sample in samples:
        events += len(sample.data)
        malicious += int(sample.target.sum())
        if touch:  # read every byte of the payload's text, as a consumer that tokenises it would
            for name in ("url", "content"):
                characters += _text_checksum(sample.data.events.column(name))
        count += 1
        if count % 256 == 0:
            peak_anonymous = max(peak_anonymous, _anonymous_mb())
    seconds = time.perf_counter() - start
    if malicious != 1:
        raise RuntimeError(f"expected 1 malicious event, the samples hold {malicious}")
    queue.put((events, seconds, _peak_mb(), max(peak_anonymous, _anonymous_mb()), count))


def _run_anomalykit_generic(root: str, queue) -> None:
    _run_anomalykit(root, queue, fast=False)


def _run_anomalykit_touching(root: str, queue) -> None:
    _run_anomalykit(root, queue, touch=True)


def measure(target, root: Path) -> tuple[int, float, float, float, int]:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(str(root), queue))
    process.start()
    result = queue.get()
    process.join()
    if process.exitcode:
        raise RuntimeError(f"{target.__name__} failed with exit code {process.exitcode}")
    return result


def _drop_index(root: Path) -> None:
    shutil.rmtree(root / "r4.2" / ".anomalykit", ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-gb", type=float, nargs="+", default=[0.5, 2.0], help="http.csv sizes to build")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of alternating runs per size")
    parser.add_argument("--users", type=int, default=1000, help="users in the release (r4.2 has 1,000)")
    parser.add_argument("--workdir", default=tempfile.gettempdir(), help="where the release is written")
    parser.add_argument("--keep", action="store_true", help="keep the written data")
    args = parser.parse_args(argv)

    methods = [("pandas.read_csv(http.csv)", _run_pandas),
               ("anomalykit cached, iter_samples", _run_anomalykit),
               ("anomalykit cached, for s in dataset", _run_anomalykit_generic),
               ("anomalykit cached, reading all text", _run_anomalykit_touching),
               ("anomalykit first load (builds index)", _run_anomalykit)]
    base = Path(tempfile.mkdtemp(prefix="anomalykit-bench-cert-", dir=args.workdir))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; medians of {args.repeats} alternating rounds "
          f"[min-max]", flush=True)
    print(f"{'http.csv':>9} {'method':<37} {'events':>10} {'events/s (median [min-max])':>30} "
          f"{'peak RSS MB':>11} {'anon MB':>7} {'vs pandas':>9}")
    try:
        for size in args.sizes_gb:
            root = base / f"{size:g}GB"
            counts = write_release(root, int(size * (1 << 30)), args.users)
            actual = (root / "r4.2" / "http.csv").stat().st_size / (1 << 30)
            measure(_run_anomalykit, root)  # builds the index the cached runs use (not reported)
            results: dict[str, list[tuple[int, float, float, float, int]]] = {name: [] for name, _ in methods}
            for _ in range(args.repeats):
                for name, target in methods:
                    if name.startswith("anomalykit first load"):
                        _drop_index(root)
                    results[name].append(measure(target, root))
            reference = statistics.median(r[0] / r[1] for r in results[methods[0][0]])
            units = 0
            for name, _ in methods:
                runs = results[name]
                rates = [r[0] / r[1] for r in runs]
                rate = statistics.median(rates)
                units = runs[0][4] if name != methods[0][0] else units
                spread = f"{rate:,.0f} [{min(rates) / 1e6:.2f}-{max(rates) / 1e6:.2f}M]"
                print(f"{actual:8.2f}G {name:<37} {runs[0][0]:>10,} {spread:>30} {max(r[2] for r in runs):>11.0f} "
                      f"{max(r[3] for r in runs):>7.0f} {rate / reference:>8.2f}x", flush=True)
            print(f"{'':9} ({counts['http']:,} http rows, {counts['logon']:,} logon rows; {units:,} user-day samples; "
                  f"peak columns: the largest of the rounds)", flush=True)
            if not args.keep:
                shutil.rmtree(root)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
