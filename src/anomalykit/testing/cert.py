"""CERT insider-threat layout: ``<release>/{logon,device,http,email,file,psychometric}.csv``,
``<release>/LDAP/YYYY-MM.csv`` and ``answers/`` (``insiders.csv`` plus answer files).

The tree carries the quirks of the real releases: per-release columns (r5.2/r6.2 ``file_tree``,
email ``activity``, file flags, r6.2 http ``activity``), r6.2's quoted content with commas, a
Connect without Disconnect, a screen unlock recorded as a second Logon, a day without Logoff,
empty ``cc``/``bcc``, a short CEO row in LDAP, answer files without header that also hold a
context row of another user, r6.2's flat answer files with the extra tag column, its truncated
date in ``insiders.csv``, and rows of other releases in ``insiders.csv``.

>>> import anomalykit, tempfile
>>> from anomalykit.testing import build
>>> built = build("cert", tempfile.mkdtemp())
>>> len(anomalykit.load("cert", built.root, **built.options)) == built.expected["total"]
True
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from . import Built, register_builder

RELEASES = ("r4.2", "r5.2", "r6.2")
_COLUMNS = {
    "r4.2": {
        "logon": ("id", "date", "user", "pc", "activity"),
        "device": ("id", "date", "user", "pc", "activity"),
        "http": ("id", "date", "user", "pc", "url", "content"),
        "email": ("id", "date", "user", "pc", "to", "cc", "bcc", "from", "size", "attachments", "content"),
        "file": ("id", "date", "user", "pc", "filename", "content"),
    },
    "r5.2": {
        "logon": ("id", "date", "user", "pc", "activity"),
        "device": ("id", "date", "user", "pc", "file_tree", "activity"),
        "http": ("id", "date", "user", "pc", "url", "content"),
        "email": ("id", "date", "user", "pc", "to", "cc", "bcc", "from", "activity", "size", "attachments", "content"),
        "file": ("id", "date", "user", "pc", "filename", "activity", "to_removable_media", "from_removable_media",
                 "content"),
    },
}
_COLUMNS["r6.2"] = dict(_COLUMNS["r5.2"], http=("id", "date", "user", "pc", "url", "activity", "content"))
_FIRST_DAY = datetime(2010, 1, 4)  # a Monday
_WORDS = ("remain", "representatives", "spy", "bait", "covert", "middle", "systems", "july", "during",
          "difficulty", "overall", "project", "report", "budget", "quarter", "meeting")
_NAMES = ("Calvin", "Edan", "Love", "Kaye", "Hyacinth", "Gray", "Dean", "Flynn", "Hines", "Ruby", "Blair",
          "Alexander", "Allen", "Ashton", "Buckley", "Lynn", "Adena", "Pratt")


@dataclass
class _Event:
    kind: str
    when: datetime
    user: str
    pc: str
    fields: dict[str, str]
    malicious: bool = False
    context: bool = False  # written into the insider's answer file though it is another user's
    event_id: str = ""
    decoy: bool = False  # a file event on a decoy file (its name and PC are in decoy_file.csv)


@dataclass
class _Tree:
    release: str
    rng: np.random.Generator
    events: list[_Event] = field(default_factory=list)

    def add(self, kind: str, when: datetime, user: str, pc: str, malicious: bool = False, context: bool = False,
            decoy: bool = False, **fields: str) -> _Event:
        event = _Event(kind, when, user, pc, fields, malicious, context, decoy=decoy)
        self.events.append(event)
        return event

    def words(self, n: int = 6) -> str:
        text = " ".join(self.rng.choice(_WORDS, n))
        if self.release == "r6.2":  # r6 content is prose with commas and quotes
            text = text.replace(" ", ", ", 1) + ' said "ok"'
        return text


def _event_id(rng: np.random.Generator) -> str:
    letters = lambda k: "".join(chr(65 + int(c)) for c in rng.integers(0, 26, k))  # noqa: E731
    digits = lambda k: "".join(str(int(c)) for c in rng.integers(0, 10, k))  # noqa: E731
    return (f"{{{letters(1)}{digits(1)}{letters(1)}{digits(1)}-{letters(1)}{digits(1)}{letters(2)}{digits(2)}"
            f"{letters(2)}-{digits(4)}{letters(4)}}}")


def _user_ids(n: int) -> list[str]:
    return [f"{chr(65 + i % 26)}{chr(65 + (3 * i + 1) % 26)}{chr(65 + (7 * i + 2) % 26)}{1000 + 37 * i:04d}"
            for i in range(n)]


@register_builder("cert")
def build_cert(root: Path, release: str = "r4.2", n_users: int = 4, n_days: int = 3, seed: int = 0) -> Built:
    """Write a tiny CERT release (``release`` = r4.2, r5.2 or r6.2) and its answers package.

    Users 0 and 1 are insiders (scenarios 1 and 2; for r6.2 scenarios 1 and 4, the latter with
    the truncated start date). ``expected``: ``total`` user-days, ``anomalous`` user-days,
    ``malicious_events``, ``events`` per type, ``users``, ``insiders``, ``sessions``, ``decoy_events``
    (r5.2/r6.2: user 2 opens the decoy planted on its PC on day 1; user 0 opens a file of the same
    name on its own PC, which is no decoy).
    """
    if release not in RELEASES:
        raise ConfigError(f"build_cert: release must be one of {', '.join(RELEASES)}, got {release!r}")
    if n_users < 3 or n_days < 2:
        raise ConfigError(f"build_cert: needs n_users >= 3 and n_days >= 2, got {n_users} and {n_days}")
    rng = np.random.default_rng(seed)
    tree = _Tree(release, rng)
    users = _user_ids(n_users)
    pcs = {user: f"PC-{1000 + 111 * i:04d}" for i, user in enumerate(users)}
    names = {user: f"{_NAMES[i % 18]} {_NAMES[(i + 5) % 18]} {_NAMES[(i + 11) % 18]}" for i, user in enumerate(users)}
    insiders = {users[0]: 1, users[1]: 4 if release == "r6.2" else 2}
    absent = {(users[-1], 1)}  # the last user takes day 1 off
    sessions = 0
    for day in range(n_days):
        date = _FIRST_DAY + timedelta(days=day)
        for index, user in enumerate(users):
            if (user, day) in absent:
                continue
            host = pcs[user]
            start = date + timedelta(hours=7, minutes=int(rng.integers(0, 50)))
            tree.add("logon", start, user, host, activity="Logon")
            sessions += 1
            if index == 2 and day == 0:  # a screen unlock, recorded as a Logon
                tree.add("logon", start + timedelta(hours=3), user, host, activity="Logon")
            for k in range(2 + int(rng.integers(0, 2))):
                when = start + timedelta(minutes=20 + 30 * k, seconds=int(rng.integers(0, 59)))
                tree.add("http", when, user, host, url=f"http://msn.com/{_WORDS[(index + day + k) % len(_WORDS)]}/{k}.htm",
                         activity="WWW Visit", content=tree.words())
            recipient = names[users[(index + 1) % n_users]].replace(" ", ".") + "@dtaa.com"
            tree.add("email", start + timedelta(hours=2), user, host, to=recipient, cc="", bcc="",
                     sender=names[user].replace(" ", ".") + "@dtaa.com", activity="Send",
                     size=str(int(rng.integers(1000, 60000))),
                     attachments="0" if release == "r4.2" else "", content=tree.words())
            if index % 2 == 0:
                tree.add("file", start + timedelta(hours=4), user, host, filename=f"R:\\{index}{day}DOC.doc",
                         activity="File Write", to_removable_media="True", from_removable_media="False",
                         content="D0-CF-11-E0-A1-B1-1A-E1 " + tree.words(3))
                tree.add("device", start + timedelta(hours=3, minutes=50), user, host,
                         file_tree=f"R:\\;R:\\{user}", activity="Connect")
                if not (index == 0 and day == 0):  # a Connect without its Disconnect
                    tree.add("device", start + timedelta(hours=4, minutes=10), user, host, file_tree="",
                             activity="Disconnect")
            if release != "r4.2" and day == 1 and index in (0, 2):
                # user 2 opens the decoy planted on its PC; user 0 opens a file of the same name on
                # its own PC, which is not a decoy (a decoy is a file on one PC)
                tree.add("file", start + timedelta(hours=5), user, host, filename=_decoy_name(2, users[2]),
                         activity="File Open", to_removable_media="False", from_removable_media="False",
                         content="D0-CF-11-E0-A1-B1-1A-E1 " + tree.words(3), decoy=index == 2)
            if not (index == 3 and day == 0):  # a day without Logoff
                tree.add("logon", date + timedelta(hours=17, minutes=int(rng.integers(0, 50))), user, host,
                         activity="Logoff")
    # insider activity on the last day: after hours, thumb drive, upload
    last = _FIRST_DAY + timedelta(days=n_days - 1)
    insider, host = users[0], pcs[users[0]]
    night = last + timedelta(hours=22)
    tree.add("logon", night, insider, host, malicious=True, activity="Logon")
    tree.add("device", night + timedelta(minutes=5), insider, host, malicious=True,
             file_tree=f"R:\\;R:\\{insider}", activity="Connect")
    tree.add("http", night + timedelta(minutes=9), insider, host, malicious=True,
             url="http://wikileaks.org/Leak/upload.php", activity="WWW Upload", content=tree.words())
    tree.add("device", night + timedelta(minutes=30), insider, host, malicious=True, file_tree="",
             activity="Disconnect")
    tree.add("logon", night + timedelta(minutes=40), insider, host, malicious=True, activity="Logoff")
    sessions += 1
    # the second insider on day 0: job hunting, plus the supervisor's reply as a context row
    second, host2 = users[1], pcs[users[1]]
    tree.add("http", _FIRST_DAY + timedelta(hours=12), second, host2, malicious=True,
             url="http://careerbuilder.com/jobs/apply.htm", activity="WWW Visit", content=tree.words())
    tree.add("email", _FIRST_DAY + timedelta(hours=12, minutes=5), second, host2, malicious=True,
             to="hr@lockheedmartin.com", cc="", bcc="", sender=names[second].replace(" ", ".") + "@dtaa.com",
             activity="Send", size="25830", attachments="0" if release == "r4.2" else "resume.doc(4096)",
             content=tree.words())
    tree.add("email", _FIRST_DAY + timedelta(hours=12, minutes=30), users[2], pcs[users[2]], context=True,
             to=names[second].replace(" ", ".") + "@dtaa.com", cc="", bcc="",
             sender=names[users[2]].replace(" ", ".") + "@dtaa.com", activity="Send", size="1200",
             attachments="0" if release == "r4.2" else "", content=tree.words())

    folder = root / release
    folder.mkdir(parents=True, exist_ok=True)
    counts = _write_activity_files(folder, tree)
    _write_people(folder, release, users, names)
    if release != "r4.2":
        decoys = "".join(f"{_decoy_name(i, u)},{pcs[u]}\n" for i, u in enumerate(users))
        header = '"decoy_filename","pc"\n' if release == "r6.2" else "decoy_filename,pc\n"
        (folder / "decoy_file.csv").write_text(header + decoys)
    _write_answers(root / "answers", tree, release, insiders, n_days)

    user_days = {(e.user, e.when.date()) for e in tree.events}
    anomalous = {(e.user, e.when.date()) for e in tree.events if e.malicious}
    return Built(root, {"release": release}, {
        "total": len(user_days),
        "anomalous": len(anomalous),
        "malicious_events": sum(e.malicious for e in tree.events),
        "events": counts,
        "users": n_users,
        "insiders": dict(insiders),
        "sessions": sessions,
        "decoy_events": sum(e.decoy for e in tree.events),
    })


def _decoy_name(index: int, user: str) -> str:
    return f"C:\\{user[:3]}\\decoy{index}.doc"


def _format_row(values: list[str], quoted: bool, quote_all: bool = False) -> str:
    if not quoted:
        return ",".join(values)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL).writerow(values)
    return buffer.getvalue()


def _values(event: _Event, columns: tuple[str, ...]) -> list[str]:
    out = []
    for column in columns:
        if column == "id":
            out.append(event.event_id)
        elif column == "date":
            out.append(event.when.strftime("%m/%d/%Y %H:%M:%S"))
        elif column == "user":
            out.append(event.user)
        elif column == "pc":
            out.append(event.pc)
        elif column == "from":
            out.append(event.fields["sender"])
        else:
            out.append(event.fields.get(column, ""))
    return out


def _write_activity_files(folder: Path, tree: _Tree) -> dict[str, int]:
    counts = {}
    quoted = tree.release == "r6.2"
    for kind, columns in _COLUMNS[tree.release].items():
        events = sorted((e for e in tree.events if e.kind == kind), key=lambda e: e.when)
        lines = [",".join(columns)]
        for event in events:
            event.event_id = _event_id(tree.rng)
            values = _values(event, columns)
            lines.append(_format_row(values, quoted and any("," in v or '"' in v for v in values)))
        (folder / f"{kind}.csv").write_text("\n".join(lines) + "\n", newline="\n")
        counts[kind] = len(events)
    return counts


def _write_people(folder: Path, release: str, users: list[str], names: dict[str, str]) -> None:
    rng = np.random.default_rng(len(users))
    psychometric = ["employee_name,user_id,O,C,E,A,N"]
    for user in users:
        psychometric.append(f"{names[user]},{user}," + ",".join(str(int(v)) for v in rng.integers(10, 50, 5)))
    (folder / "psychometric.csv").write_text("\n".join(psychometric) + "\n")
    ldap = folder / "LDAP"
    ldap.mkdir(exist_ok=True)
    with_projects = release != "r4.2"
    header = ("employee_name,user_id,email,role," + ("projects," if with_projects else "") +
              "business_unit,functional_unit,department,team,supervisor")
    ceo = users[-1]
    leaver = users[1]  # the scenario-2 insider leaves after January
    # written out of name order: a folder listing is not sorted
    for month, staff in (("2010-01", users), ("2010-02", [u for u in users if u != leaver]), ("2009-12", users)):
        rows = [header]
        for user in staff:
            email = names[user].replace(" ", ".") + "@dtaa.com"
            if user == ceo:  # the CEO row stops after the role
                rows.append(f"{names[user]},{user},{email},ChiefExecutiveOfficer")
                continue
            role = "ITAdmin" if user == users[2] and month == "2010-02" else "Salesman"
            project = ("Project 1," if with_projects else "")
            rows.append(f"{names[user]},{user},{email},{role},{project}1,5 - SalesAndMarketing,2 - Sales,"
                        f"3 - RegionalSales,{names[ceo]}")
        (ldap / f"{month}.csv").write_text("\n".join(rows) + "\n")


def _write_answers(folder: Path, tree: _Tree, release: str, insiders: dict[str, int], n_days: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    first, last = _FIRST_DAY, _FIRST_DAY + timedelta(days=n_days - 1, hours=23)
    table = ["dataset,scenario,details,user,start,end",
             "2,1,r2.csv,ONS0995,3/6/2010 1:41:56,3/20/2010 8:10:12",  # another release, not zero-padded
             "3.1,1,r3.1-1.csv,CSF0929,07/01/2010 01:24:58,07/16/2010 06:52:00"]
    number = release[1:]
    quoted = release == "r6.2"
    for user, scenario in insiders.items():
        details = f"{release}-{scenario}.csv" if quoted else f"{release}-{scenario}-{user}.csv"
        start = first.strftime("%m/%d/%Y %H:%M:%S")
        if quoted and scenario == 4:
            start = start[2:]  # the truncated r6.2 scenario-4 start date
        table.append(f"{number},{scenario},{details},{user},{start},{last.strftime('%m/%d/%Y %H:%M:%S')}")
        rows = []
        for event in sorted(tree.events, key=lambda e: e.when):
            if not ((event.malicious and event.user == user) or (event.context and scenario != 1)):
                continue
            values = [event.kind] + _values(event, _COLUMNS[release][event.kind])
            if quoted and event.kind in ("http", "email", "file"):
                values.insert(len(values) - 1, "jobsearch" if scenario != 1 else "wikileaks")  # extra tag column
            rows.append(_format_row(values, quoted and event.kind != "http", quote_all=True))
        target = folder / details if quoted else folder / f"{release}-{scenario}" / details
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(rows) + "\n")
    (folder / "insiders.csv").write_text("\n".join(table) + "\n")
    (folder / "scenarios.txt").write_text("1. User who did not previously use removable drives or work after hours "
                                          "begins logging in after hours, ...\n")


def corrupt(path: Path, line: str) -> None:
    """Append a raw line (a truncated row, a bad date) to a file of a built tree, for tests."""
    with open(path, "a", newline="\n") as handle:
        handle.write(line.rstrip("\n") + "\n")


__all__: list[Any] = ["build_cert", "corrupt", "RELEASES"]
