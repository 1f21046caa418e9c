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

__all__ = ["FEATURES", "CertIForestConfig", "CertIForestDetector", "activity_features"]

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
            raise ConfigError(f"CertIForestConfig: work_start ({self.work_start}) must be before work_end ({self.work_end})")


def _string(frame, name: str):
    import polars as pl

    return pl.col(name).cast(pl.Utf8) if name in frame.columns else pl.lit(None, dtype=pl.Utf8)


def activity_features(samples: Sequence[Sample], *, usual_pc: dict[str, str] | None = None,
                      internal_domain: str = "dtaa.com", work_start: float = 7.5, work_end: float = 17.5) -> np.ndarray:
    """The (samples x ``FEATURES``) matrix of ``EventLog`` samples of the ``cert`` loader.

    ``usual_pc`` maps a user to the PC counted as theirs (absent users: their most used PC in the sample).
    """
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
        table = events.select([c for c in wanted if c in names])
        tables.append(table.append_column("sample", pa.array(np.full(table.num_rows, index, np.int64))))
        users.append(str((sample.meta or {}).get("user") or ""))
    if not tables:
        return np.zeros((0, len(FEATURES)))
    raw = pl.from_arrow(pa.concat_tables(tables, promote_options="permissive").combine_chunks())
    sample_users = pl.DataFrame({"sample": np.arange(len(users), dtype=np.int64), "sample_user": users})
    df = raw.join(sample_users, on="sample", how="left").select([
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

    host = pl.col("url").fill_null("").str.extract(r"//([^/]+)", 1).fill_null("").str.to_lowercase().str.replace(r"^www\.", "")
    keep_full = pl.any_horizontal([host.str.contains(k, literal=True) for k in _KEEP_FULL_DOMAIN])
    domain = pl.when(keep_full).then(host).otherwise(
        pl.coalesce(host.str.extract(r"([^.]+\.[^.]+)$", 1), host))
    url = pl.col("url").fill_null("")
    job = domain.is_in(_JOB) | (domain.str.contains("job") & (domain.str.contains("hunt") | domain.str.contains("search"))) \
        | (domain.str.contains("aol.com") & (url.str.contains("recruit") | url.str.contains("job")))
    hack = domain.is_in(_HACK) | domain.str.contains("keylog")

    def recipients(column: str) -> pl.Expr:
        return pl.col(column).fill_null("").str.split(";").list.eval(pl.element().filter(pl.element().str.len_chars() > 0))

    all_to = pl.concat_list([recipients("to"), recipients("cc"), recipients("bcc")])
    external = all_to.list.eval(~pl.element().str.contains(internal_domain, literal=True)).list.sum()
    attachments = pl.col("attachments").fill_null("")
    attachment_count = pl.when(attachments.str.contains(r"^\s*\d+\s*$")).then(
        attachments.str.strip_chars().cast(pl.Int64, strict=False)).otherwise(
        attachments.str.split(";").list.eval(pl.element().filter(pl.element().str.contains(r"\."))).list.len().cast(pl.Int64))
    filename = pl.col("filename").fill_null("")
    to_removable = file & ((pl.col("to_removable_media").fill_null("").str.to_lowercase() == "true")
                           | filename.str.starts_with("R:"))
    from_removable = file & (pl.col("from_removable_media").fill_null("").str.to_lowercase() == "true")
    exe_archive = file & filename.str.to_lowercase().str.contains(r"\.(exe|sh|zip|rar|7z)$")
    user_pc = pl.col("sample_user").replace_strict(usual_pc or {}, default=None) if usual_pc else pl.lit(None, dtype=pl.Utf8)
    count = lambda expr: expr.cast(pl.Int64).sum()  # noqa: E731

    aggregated = df.with_columns(user_pc.alias("usual_pc")).group_by("sample").agg(
        pl.len().alias("events"), count(logon).alias("logon"), count(logoff).alias("logoff"),
        count(connect).alias("connect"), count(disconnect).alias("disconnect"), count(http).alias("http"),
        count(email).alias("email"), count(file).alias("file"),
        count(after).alias("after_hours_events"), count(after & logon).alias("after_hours_logon"),
        count(after & connect).alias("after_hours_connect"), count(after & http).alias("after_hours_http"),
        count(after & email).alias("after_hours_email"), count(after & file).alias("after_hours_file"),
        count(weekend).alias("weekend_events"), hour.min().alias("first_hour"), hour.max().alias("last_hour"),
        pl.col("pc").n_unique().alias("pcs"),
        pl.col("pc").mode().first().alias("mode_pc"), pl.col("usual_pc").first().alias("usual_pc"),
        count(to_removable).alias("file_to_removable"), count(from_removable).alias("file_from_removable"),
        count(exe_archive).alias("file_exe_archive"),
        count(http & activity.str.contains("upload")).alias("http_upload"),
        count(http & domain.is_in(_SOCIAL)).alias("http_social"), count(http & domain.is_in(_CLOUD)).alias("http_cloud"),
        count(http & job).alias("http_job"), count(http & domain.is_in(_LEAK)).alias("http_leak"),
        count(http & hack).alias("http_hack"),
        url.str.len_chars().filter(http).mean().alias("url_length_mean"),
        (url.str.count_matches("/") - 2).clip(lower_bound=0).filter(http).mean().alias("url_depth_mean"),
        count(email & (external > 0)).alias("email_external"),
        external.filter(email).sum().alias("email_external_recipients"),
        all_to.list.len().filter(email).sum().alias("email_recipients"),
        recipients("bcc").list.len().filter(email).sum().alias("email_bcc_recipients"),
        attachment_count.filter(email).fill_null(0).sum().alias("email_attachments"),
        pl.col("size").filter(email).mean().alias("email_size_mean"),
    )
    home = pl.coalesce(pl.col("usual_pc"), pl.col("mode_pc"))
    aggregated = aggregated.with_columns(home.alias("home"))
    # events on another PC than the user's usual one
    other = df.with_columns(user_pc.alias("usual_pc")).join(aggregated.select("sample", "home"), on="sample").group_by(
        "sample").agg(((pl.col("pc") != pl.col("home")) & pl.col("home").is_not_null()).cast(pl.Int64).sum().alias("other_pc_events"))
    result = aggregated.join(other, on="sample").sort("sample")
    if result.height != len(samples):
        empty = [samples[i].key for i in sorted(set(range(len(samples))) - set(result["sample"].to_list()))]
        raise ConfigError(f"cert features: sample(s) without events: {', '.join(empty[:5])}")
    matrix = result.select([pl.col(name).cast(pl.Float64) for name in FEATURES]).to_numpy()
    return np.nan_to_num(matrix, nan=0.0)


def _usual_pcs(samples: Sequence[Sample]) -> dict[str, str]:
    """Each user's most frequent PC over the samples (ties: the smallest name)."""
    counts: dict[str, dict[str, int]] = {}
    for sample in samples:
        user = str((sample.meta or {}).get("user") or "")
        if not user:
            continue
        pcs = sample.data.events.column("pc").to_pylist() if "pc" in sample.data.events.column_names else []  # type: ignore[union-attr]
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

    def features(self, samples: Sequence[Sample]) -> np.ndarray:
        """The feature matrix (samples x ``FEATURES``) with this detector's settings."""
        cfg = self.config
        return activity_features(samples, usual_pc=self.usual_pc_, internal_domain=cfg.internal_domain,
                                 work_start=cfg.work_start, work_end=cfg.work_end)

    def _fit(self, samples: Sequence[Sample], rng: np.random.Generator, progress: bool) -> None:
        self.usual_pc_ = _usual_pcs(samples)
        self.train_features_ = self.features(samples)
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
        x = self.features(samples)
        if self.config.model == "iforest":
            scores = -self.forest_.score_samples(x)
        else:
            scores = self._reconstruction_error(x)
        return [DetectorOutput(s.key, float(v), None, {"features": dict(zip(FEATURES, row.tolist()))})
                for s, v, row in zip(samples, scores, x)]

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {"train_features": self.train_features_, "model_seed": np.array([self.model_seed_], np.int64),
                 "usual_pc": np.frombuffer(json.dumps(self.usual_pc_, sort_keys=True).encode(), np.uint8).copy()}
        if self.config.model == "autoencoder":
            state.update(mean=self.mean_, scale=self.scale_)
            for i, (weights, bias) in enumerate(zip(self.coefs_, self.intercepts_)):
                state[f"coef{i}"], state[f"intercept{i}"] = weights, bias
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.train_features_ = np.asarray(state["train_features"], np.float64)
        self.model_seed_ = int(state["model_seed"][0])
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
