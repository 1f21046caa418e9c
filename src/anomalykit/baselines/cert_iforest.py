"""Insider-threat baseline on CERT: activity features per user-day (or user-week, or session)
scored by an IsolationForest, or by the MLP autoencoder of Le & Zincir-Heywood's CERT example.

Each ``EventLog`` sample of the ``cert`` loader becomes one feature vector (``FEATURES``), in the
spirit of the lcd-dal CERT feature extraction: counts per activity (logon, logoff, device
connect / disconnect, http, email, file), the same counts after hours (before 07:30, after 17:30,
or at a weekend) and at weekends, the first and last hour of activity, the number of distinct
PCs and of events on a PC other than the user's usual one (the most frequent in the training
data), removable-media file activity, http uploads and visits per site category (social network,
cloud storage, job search, leak site, keylogger / spyware vendor; the reference's domain lists),
URL length and depth, e-mails with external recipients (outside ``internal_domain``), recipients,
bcc recipients, attachments and size, and executable / archive files.

``model="iforest"``: scikit-learn's IsolationForest; score = the negated ``score_samples``
(higher = more anomalous). It keeps no arrays of its own, so the training feature matrix is saved
and the forest refitted with the same seed on load (identical trees). ``model="autoencoder"``:
features standardised, an MLP (d/4, d/8, d/4) regressor reconstructs them, score = Euclidean
reconstruction error; its weights are saved.

The anomaly map has one value per event (aligned with the per-event target): how rare an event of
its kind is among the training events, ``log((N + 1) / (count + 1))``, where the kind is its
activity, hour of the day, weekend, PC (own or other), site category, upload, external e-mail and
removable-media flags. In a flagged day the events behind it (a 22:00 logon, an upload to a leak
site, an e-mail to an outside recruiter) stand out from the routine ones.

The domain metric is the detection rate at investigation budgets
(``anomalykit.metrics.insider``).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..schema import Modality, Sample
from .base import Detector, DetectorConfig, DetectorOutput, param, register_baseline

__all__ = ["ADDITIVE", "FEATURES", "CertIForestConfig", "CertIForestDetector", "activity_features", "event_table",
           "features_from_events"]

_CLOUD = ("dropbox.com", "drive.google.com", "mega.co.nz", "account.live.com")
_LEAK = ("wikileaks.org", "freedom.press", "theintercept.com")
_SOCIAL = ("facebook.com", "twitter.com", "plus.google.com", "instagr.am", "instagram.com", "flickr.com",
           "linkedin.com", "reddit.com", "about.com", "youtube.com", "pinterest.com", "tumblr.com", "quora.com",
           "vine.co", "match.com", "t.co")
_JOB = ("indeed.com", "monster.com", "careerbuilder.com", "simplyhired.com")
_HACK = ("webwatchernow.com", "actionalert.com", "relytec.com", "refog.com", "wellresearchedreviews.com",
         "softactivity.com", "spectorsoft.com", "best-spy-soft.com")
_KEEP_FULL_DOMAIN = ("google.com", ".co.uk", ".co.nz", "live.com")

FEATURES = (
    "events", "logon", "logoff", "connect", "disconnect", "http", "email", "file",
    "after_hours_events", "after_hours_logon", "after_hours_connect", "after_hours_http", "after_hours_email",
    "after_hours_file", "weekend_events", "first_hour", "last_hour",
    "pcs", "other_pc_events",
    "file_to_removable", "file_from_removable", "file_exe_archive",
    "http_upload", "http_social", "http_cloud", "http_job", "http_leak", "http_hack", "url_length_mean",
    "url_depth_mean",
    "email_external", "email_external_recipients", "email_recipients", "email_bcc_recipients",
    "email_attachments", "email_size_mean",
)
MODELS = ("iforest", "autoencoder")


@dataclass
class CertIForestConfig(DetectorConfig):
    model: str = param("iforest", choices=MODELS)
    n_estimators: int = param(200, low=1, high=100_000, doc="IsolationForest trees")
    max_samples: int = param(256, low=2, high=10_000_000, doc="IsolationForest samples per tree (capped at the data)")
    ae_max_iter: int = param(200, low=1, high=100_000, doc="autoencoder training iterations")
    internal_domain: str = param("dtaa.com", doc="e-mail domain counted as internal")
    work_start: float = param(7.5, low=0.0, high=24.0, doc="start of working hours (hours)")
    work_end: float = param(17.5, low=0.0, high=24.0, doc="end of working hours (hours)")

    def validate(self) -> None:
        super().validate()
        if self.work_start >= self.work_end:
            raise ConfigError(f"CertIForestConfig: work_start ({self.work_start}) must be before "
                              f"work_end ({self.work_end})")


def _string(frame, name: str):
    import polars as pl

    return pl.col(name).cast(pl.Utf8) if name in frame.columns else pl.lit(None, dtype=pl.Utf8)


#: features that are sums over events; each event's share of them localises a day's anomaly
ADDITIVE = (
    "events", "logon", "logoff", "connect", "disconnect", "http", "email", "file",
    "after_hours_events", "after_hours_logon", "after_hours_connect", "after_hours_http", "after_hours_email",
    "after_hours_file", "weekend_events", "other_pc_events", "file_to_removable", "file_from_removable",
    "file_exe_archive", "http_upload", "http_social", "http_cloud", "http_job", "http_leak", "http_hack",
    "email_external", "email_external_recipients", "email_recipients", "email_bcc_recipients", "email_attachments",
)


def event_table(samples: Sequence[Sample], *, usual_pc: dict[str, str] | None = None, internal_domain: str = "dtaa.com",
                work_start: float = 7.5, work_end: float = 17.5):
    """One row per event of the samples (a polars DataFrame, samples in order, events in order):
    ``sample``, ``row``, each event's contribution to the ``ADDITIVE`` features, and the values
    behind the other features (``hour``, ``pc``, ``url_length``, ``url_depth``, ``email_size``)."""
    import polars as pl
    import pyarrow as pa

    wanted = ("type", "date", "pc", "activity", "url", "to", "cc", "bcc", "size", "attachments", "filename",
              "to_removable_media", "from_removable_media")
    tables, users = [], []
    for index, sample in enumerate(samples):
        events = sample.data.events  # type: ignore[union-attr]
        names = set(events.schema.names)
        if "type" not in names or "date" not in names:
            raise ConfigError(f"cert features: {sample.key} has no 'type'/'date' columns; expected a cert EventLog "
                              f"(columns: {', '.join(events.schema.names[:8])})")
        if events.num_rows == 0:
            raise ConfigError(f"cert features: {sample.key} has no events")
        table = events.select([c for c in wanted if c in names])
        tables.append(table.append_column("sample", pa.array(np.full(table.num_rows, index, np.int64))))
        users.append(str((sample.meta or {}).get("user") or ""))
    if not tables:
        raise ConfigError("cert features: no samples")
    raw = pl.from_arrow(pa.concat_tables(tables, promote_options="permissive").combine_chunks())
    sample_users = pl.DataFrame({"sample": np.arange(len(users), dtype=np.int64), "sample_user": users})
    df = raw.join(sample_users, on="sample", how="left", maintain_order="left").select([
        pl.col("sample"), pl.col("sample_user"), pl.col("date").cast(pl.Datetime("ms")),
        *[_string(raw, c).alias(c) for c in ("type", "pc", "activity", "url", "to", "cc", "bcc", "attachments",
                                            "filename", "to_removable_media", "from_removable_media")],
        (pl.col("size").cast(pl.Float64) if "size" in raw.columns else pl.lit(None, dtype=pl.Float64)).alias("size"),
    ])
    hour = pl.col("date").dt.hour().cast(pl.Float64) + pl.col("date").dt.minute().cast(pl.Float64) / 60.0
    weekend = pl.col("date").dt.weekday() >= 6
    after = weekend | (hour < work_start) | (hour > work_end)
    kind = pl.col("type")
    activity = pl.col("activity").fill_null("").str.to_lowercase()
    logon = (kind == "logon") & (activity == "logon")
    logoff = (kind == "logon") & (activity == "logoff")
    connect = (kind == "device") & (activity == "connect")
    disconnect = (kind == "device") & (activity == "disconnect")
    http, email, file = kind == "http", kind == "email", kind == "file"

    host = (pl.col("url").fill_null("").str.extract(r"//([^/]+)", 1).fill_null("").str.to_lowercase()
            .str.replace(r"^www\.", ""))
    keep_full = pl.any_horizontal([host.str.contains(k, literal=True) for k in _KEEP_FULL_DOMAIN])
    domain = pl.when(keep_full).then(host).otherwise(pl.coalesce(host.str.extract(r"([^.]+\.[^.]+)$", 1), host))
    url = pl.col("url").fill_null("")
    job = (domain.is_in(_JOB)
           | (domain.str.contains("job") & (domain.str.contains("hunt") | domain.str.contains("search")))
           | (domain.str.contains("aol.com") & (url.str.contains("recruit") | url.str.contains("job"))))
    hack = domain.is_in(_HACK) | domain.str.contains("keylog")

    def recipients(column: str) -> pl.Expr:
        names = pl.col(column).fill_null("").str.split(";")
        return names.list.eval(pl.element().filter(pl.element().str.len_chars() > 0))

    all_to = pl.concat_list([recipients("to"), recipients("cc"), recipients("bcc")])
    external = all_to.list.eval(~pl.element().str.contains(internal_domain, literal=True)).list.sum()
    attachments = pl.col("attachments").fill_null("")
    attachment_count = pl.when(attachments.str.contains(r"^\s*\d+\s*$")).then(
        attachments.str.strip_chars().cast(pl.Int64, strict=False)).otherwise(
        attachments.str.split(";").list.eval(pl.element().filter(pl.element().str.contains(r"\."))).list.len()
        .cast(pl.Int64))
    filename = pl.col("filename").fill_null("")
    user_pc = pl.col("sample_user").replace_strict(usual_pc, default=None) if usual_pc else pl.lit(None, dtype=pl.Utf8)
    home = pl.coalesce(user_pc, pl.col("pc").mode().min().over("sample"))
    on = lambda condition: condition.fill_null(False).cast(pl.Float64)  # noqa: E731
    in_email = lambda value: pl.when(email).then(value.cast(pl.Float64)).otherwise(0.0).fill_null(0.0)  # noqa: E731
    contributions = {
        "events": pl.lit(1.0), "logon": on(logon), "logoff": on(logoff), "connect": on(connect),
        "disconnect": on(disconnect), "http": on(http), "email": on(email), "file": on(file),
        "after_hours_events": on(after), "after_hours_logon": on(after & logon),
        "after_hours_connect": on(after & connect), "after_hours_http": on(after & http),
        "after_hours_email": on(after & email), "after_hours_file": on(after & file),
        "weekend_events": on(weekend), "other_pc_events": on((pl.col("pc") != home) & home.is_not_null()),
        "file_to_removable": on(file & ((pl.col("to_removable_media").fill_null("").str.to_lowercase() == "true")
                                        | filename.str.starts_with("R:"))),
        "file_from_removable": on(file & (pl.col("from_removable_media").fill_null("").str.to_lowercase() == "true")),
        "file_exe_archive": on(file & filename.str.to_lowercase().str.contains(r"\.(exe|sh|zip|rar|7z)$")),
        "http_upload": on(http & activity.str.contains("upload")), "http_social": on(http & domain.is_in(_SOCIAL)),
        "http_cloud": on(http & domain.is_in(_CLOUD)), "http_job": on(http & job),
        "http_leak": on(http & domain.is_in(_LEAK)),
        "http_hack": on(http & hack), "email_external": on(email & (external > 0)),
        "email_external_recipients": in_email(external), "email_recipients": in_email(all_to.list.len()),
        "email_bcc_recipients": in_email(recipients("bcc").list.len()), "email_attachments": in_email(attachment_count),
    }
    return df.select(
        pl.col("sample"), pl.int_range(pl.len()).over("sample").alias("row"),
        *[expr.alias(name) for name, expr in contributions.items()],
        hour.alias("hour"), pl.col("pc"),
        pl.when(http).then(url.str.len_chars().cast(pl.Float64)).alias("url_length"),
        pl.when(http).then((url.str.count_matches("/") - 2).clip(lower_bound=0).cast(pl.Float64)).alias("url_depth"),
        pl.when(email).then(pl.col("size")).alias("email_size"),
    )


def features_from_events(events, n_samples: int) -> np.ndarray:
    """The (samples x ``FEATURES``) matrix from ``event_table``'s rows."""
    import polars as pl

    aggregated = events.group_by("sample").agg(
        *[pl.col(name).sum() for name in ADDITIVE],
        pl.col("hour").min().alias("first_hour"), pl.col("hour").max().alias("last_hour"),
        pl.col("pc").n_unique().alias("pcs"), pl.col("url_length").mean().alias("url_length_mean"),
        pl.col("url_depth").mean().alias("url_depth_mean"), pl.col("email_size").mean().alias("email_size_mean"),
    ).sort("sample")
    if aggregated.height != n_samples:  # pragma: no cover - event_table refuses empty samples
        raise ConfigError(f"cert features: {n_samples - aggregated.height} sample(s) without events")
    return np.nan_to_num(aggregated.select([pl.col(name).cast(pl.Float64) for name in FEATURES]).to_numpy(), nan=0.0)


def activity_features(samples: Sequence[Sample], *, usual_pc: dict[str, str] | None = None,
                      internal_domain: str = "dtaa.com", work_start: float = 7.5, work_end: float = 17.5) -> np.ndarray:
    """The (samples x ``FEATURES``) matrix of ``EventLog`` samples of the ``cert`` loader.

    ``usual_pc`` maps a user to the PC counted as theirs (absent users: their most used PC in the sample).
    """
    events = event_table(samples, usual_pc=usual_pc, internal_domain=internal_domain, work_start=work_start,
                         work_end=work_end)
    return features_from_events(events, len(samples))


#: what makes two events "of the same kind" for the per-event map, with the hour of the day
SIGNATURE = ("logon", "logoff", "connect", "disconnect", "http", "email", "file", "weekend_events", "other_pc_events",
             "file_to_removable", "file_from_removable", "file_exe_archive", "http_upload", "http_social", "http_cloud",
             "http_job", "http_leak", "http_hack", "email_external")


def _signatures(events) -> np.ndarray:
    """One integer per event: its ``SIGNATURE`` flags as bits, times 24, plus its hour."""
    flags = events.select(list(SIGNATURE)).to_numpy() > 0
    bits = (flags.astype(np.int64) << np.arange(len(SIGNATURE), dtype=np.int64)).sum(axis=1)
    hours = np.clip(np.floor(np.nan_to_num(events["hour"].to_numpy(), nan=0.0)), 0, 23).astype(np.int64)
    return bits * 24 + hours


def _usual_pcs(samples: Sequence[Sample]) -> dict[str, str]:
    """Each user's most frequent PC over the samples (ties: the smallest name)."""
    counts: dict[str, dict[str, int]] = {}
    for sample in samples:
        user = str((sample.meta or {}).get("user") or "")
        if not user:
            continue
        events = sample.data.events  # type: ignore[union-attr]
        pcs = events.column("pc").to_pylist() if "pc" in events.schema.names else []
        for pc in pcs:
            if pc:
                counts.setdefault(user, {})[pc] = counts.setdefault(user, {}).get(pc, 0) + 1
    return {user: min(pcs, key=lambda pc: (-pcs[pc], pc)) for user, pcs in counts.items()}


@register_baseline("cert_iforest")
class CertIForestDetector(Detector):
    """Activity features + IsolationForest (or MLP autoencoder) for CERT (see the module docstring)."""

    modality = Modality.EVENTLOG
    config_class = CertIForestConfig
    config: CertIForestConfig

    def _events(self, samples: Sequence[Sample]):
        cfg = self.config
        return event_table(samples, usual_pc=self.usual_pc_, internal_domain=cfg.internal_domain,
                           work_start=cfg.work_start, work_end=cfg.work_end)

    def features(self, samples: Sequence[Sample]) -> np.ndarray:
        """The feature matrix (samples x ``FEATURES``) with this detector's settings."""
        return features_from_events(self._events(samples), len(samples))

    def event_scores(self, events) -> np.ndarray:
        """Per event: how rare its kind is in the training events, ``log((N + 1) / (count + 1))``."""
        codes = _signatures(events)
        known = self.signature_codes_  # sorted, never empty: training samples have events
        position = np.minimum(np.searchsorted(known, codes), known.size - 1)
        counts = np.where(known[position] == codes, self.signature_counts_[position], 0)
        return np.log((self.signature_counts_.sum() + 1.0) / (counts + 1.0))

    def _fit(self, samples: Sequence[Sample], rng: np.random.Generator, progress: bool) -> None:
        self.usual_pc_ = _usual_pcs(samples)
        events = self._events(samples)
        self.train_features_ = features_from_events(events, len(samples))
        self.signature_codes_, self.signature_counts_ = np.unique(_signatures(events), return_counts=True)
        self.model_seed_ = int(rng.integers(2**31 - 1))
        self._build(train_network=True)

    def _build(self, train_network: bool) -> None:
        x = self.train_features_
        if self.config.model == "iforest":
            from sklearn.ensemble import IsolationForest

            self.forest_ = IsolationForest(n_estimators=self.config.n_estimators,
                                           max_samples=min(self.config.max_samples, x.shape[0]),
                                           random_state=self.model_seed_).fit(x)
            return
        if train_network:
            from sklearn.neural_network import MLPRegressor

            mean, std = x.mean(axis=0), x.std(axis=0)
            self.mean_, self.scale_ = mean, np.where(std > 1e-12, std, 1.0)
            z = (x - self.mean_) / self.scale_
            d = x.shape[1]
            network = MLPRegressor(hidden_layer_sizes=(max(d // 4, 1), max(d // 8, 1), max(d // 4, 1)),
                                   max_iter=self.config.ae_max_iter, random_state=self.model_seed_)
            import warnings

            from sklearn.exceptions import ConvergenceWarning

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                network.fit(z, z)
            self.coefs_ = [c.astype(np.float64) for c in network.coefs_]
            self.intercepts_ = [b.astype(np.float64) for b in network.intercepts_]

    def _reconstruction_error(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean_) / self.scale_
        h = z
        for i, (weights, bias) in enumerate(zip(self.coefs_, self.intercepts_)):
            h = h @ weights + bias
            if i < len(self.coefs_) - 1:
                h = np.maximum(h, 0.0)  # MLPRegressor's default ReLU; identity output
        return np.linalg.norm(z - h, axis=1)

    def _score(self, samples: Sequence[Sample]) -> list[DetectorOutput]:
        events = self._events(samples)
        x = features_from_events(events, len(samples))
        if self.config.model == "iforest":
            scores = -self.forest_.score_samples(x)
        else:
            scores = self._reconstruction_error(x)
        per_event = np.split(self.event_scores(events), np.cumsum([len(s.data) for s in samples])[:-1])
        return [DetectorOutput(s.key, float(v), m, {"features": dict(zip(FEATURES, row.tolist()))})
                for s, v, m, row in zip(samples, scores, per_event, x)]

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {"train_features": self.train_features_, "model_seed": np.array([self.model_seed_], np.int64),
                 "signature_codes": self.signature_codes_, "signature_counts": self.signature_counts_,
                 "usual_pc": np.frombuffer(json.dumps(self.usual_pc_, sort_keys=True).encode(), np.uint8).copy()}
        if self.config.model == "autoencoder":
            state.update(mean=self.mean_, scale=self.scale_)
            for i, (weights, bias) in enumerate(zip(self.coefs_, self.intercepts_)):
                state[f"coef{i}"], state[f"intercept{i}"] = weights, bias
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.train_features_ = np.asarray(state["train_features"], np.float64)
        self.model_seed_ = int(state["model_seed"][0])
        self.signature_codes_ = np.asarray(state["signature_codes"], np.int64)
        self.signature_counts_ = np.asarray(state["signature_counts"], np.int64)
        self.usual_pc_ = json.loads(bytes(np.asarray(state["usual_pc"], np.uint8)).decode())
        if self.config.model == "autoencoder":
            self.mean_, self.scale_ = state["mean"], state["scale"]
            layers = sum(1 for k in state if k.startswith("coef"))
            self.coefs_ = [state[f"coef{i}"] for i in range(layers)]
            self.intercepts_ = [state[f"intercept{i}"] for i in range(layers)]
        self._build(train_network=False)  # a forest is refitted on the saved features with the saved seed

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[Sample], list[Sample]]:
        import anomalykit
        from ..testing import build

        with tempfile.TemporaryDirectory() as folder:
            built = build("cert", folder, n_users=8, n_days=5)
            samples = list(anomalykit.load("cert", built.root, **built.options))
        train, test = split_example(samples, last_days=1)
        return {"n_estimators": 100}, train, test


def split_example(samples: Sequence[Sample], last_days: int) -> tuple[list[Sample], list[Sample]]:
    """Normal user-days before the last ``last_days`` days for training; the rest (and every
    anomalous user-day) for testing."""
    days = sorted({str((s.meta or {}).get("start", ""))[:10] for s in samples})
    cut = set(days[-last_days:])
    train = [s for s in samples if s.label == 0 and str(s.meta.get("start", ""))[:10] not in cut]
    test = [s for s in samples if s.label == 1 or str(s.meta.get("start", ""))[:10] in cut]
    return train, test
