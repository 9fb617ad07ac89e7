"""The domain data model (DESIGN §3)."""

from __future__ import annotations

from django.db import models


class Blob(models.Model):
    """A content-addressed file under BLOB_DIR; the row is written after the file."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.sha256[:12]}… ({self.size} bytes)"


class ImmutableError(Exception):
    """Raised when code tries to change a row that is immutable once created."""


class Dataset(models.Model):
    """An immutable snapshot of labelled images; its pixels are one blob."""

    class Split(models.TextChoices):
        TRAIN = "train"
        VAL = "val"
        TEST = "test"

    name = models.CharField(max_length=200)
    source = models.CharField(max_length=100)
    split = models.CharField(max_length=10, choices=Split.choices)
    num_samples = models.PositiveIntegerField()
    class_counts = models.JSONField()
    sha256 = models.CharField(max_length=64, db_index=True)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="datasets")
    parents = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="children")
    meta = models.JSONField(default=dict, blank=True, help_text="e.g. the recorded train/validation split")
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.pop("force_insert", False):
            raise ImmutableError("a dataset cannot be changed after creation")
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"#{self.pk} {self.name} ({self.split}, {self.num_samples})"


class ModelVersion(models.Model):
    """A trained model: weights blob, the data and settings it came from, its metrics."""

    architecture = models.CharField(max_length=50)
    hyperparameters = models.JSONField(default=dict)
    datasets = models.ManyToManyField(Dataset, related_name="model_versions", blank=True)
    base_version = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="fine_tunes"
    )
    metrics = models.JSONField(default=dict)
    weights = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="model_versions")
    nearest_index = models.ForeignKey(
        Blob, null=True, blank=True, on_delete=models.PROTECT, related_name="nearest_indexes",
        help_text="its training digits in its penultimate-layer space (ml_svc's nearest examples), if built",
    )
    parameter_count = models.PositiveIntegerField(default=0)
    run = models.ForeignKey("Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    note = models.TextField(blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    @property
    def version(self) -> str:
        return f"v{self.pk}"

    def __str__(self) -> str:
        return f"{self.version} {self.architecture}"


class Alias(models.Model):
    """A named pointer to a model version: `production` serves, `candidate` waits."""

    class Name(models.TextChoices):
        PRODUCTION = "production"
        CANDIDATE = "candidate"

    name = models.CharField(max_length=20, choices=Name.choices, primary_key=True)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    # The candidate's canary: the share of users (0-0.5, each user always on the same side) it answers instead of
    # production. 0 on production, and on a candidate until an admin sets it.
    traffic_share = models.FloatField(default=0.0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} → {self.model_version.version}"


class AliasChange(models.Model):
    """The append-only ledger of alias moves, and of the candidate's canary share."""

    class Action(models.TextChoices):
        MOVE = "move"  # an alias pointed at a version (a promotion that passed the gate, a rollback, a new candidate)
        OVERRIDE = "override"  # a promotion the gate refused, made anyway by an admin with a reason
        AUTO_ROLLBACK = "auto-rollback"  # production moved back by the platform: its correction rate rose
        CANARY = "canary"  # the candidate's share of users changed (details: from, to)

    alias = models.CharField(max_length=20, choices=Alias.Name.choices)
    action = models.CharField(max_length=20, choices=Action.choices, default=Action.MOVE)
    # What the move was decided on: the gate's figures (override), the correction rates (auto-rollback), the
    # shares (canary).
    details = models.JSONField(default=dict, blank=True)
    from_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    actor = models.CharField(max_length=150)
    reason = models.TextField(blank=True)
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


class Run(models.Model):
    """One execution of a scenario, with its progress and outcome."""

    class Kind(models.TextChoices):
        COLLECT = "collect"
        TRAIN = "train"
        FINE_TUNE = "fine-tune"
        EVALUATE = "evaluate"
        INFER = "infer"
        SWEEP = "sweep"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=20, choices=Kind.choices)
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=300, blank=True)
    epochs = models.JSONField(default=list)
    result = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # A sweep's trials are its children: cancelling it cancels them.
    parent_run = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status"]), models.Index(fields=["created_by"])]


class Prediction(models.Model):
    """One answered prediction: what the model saw, what it said, who asked."""

    image = models.BinaryField(help_text="the 28x28 uint8 input the model saw")
    raw_image = models.BinaryField(null=True, blank=True, help_text="the uploaded drawing, if any")
    digit = models.PositiveSmallIntegerField()
    probabilities = models.JSONField()
    confidence = models.FloatField(default=0.0, help_text="the probability of the predicted digit")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="predictions")
    latency_ms = models.FloatField()
    user = models.CharField(max_length=150, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    corrected_label = models.PositiveSmallIntegerField(null=True, blank=True)
    # Set by the gateway's batched history writer so that a retried batch records each prediction once.
    request_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # The run that scored a file, for its images; None for a prediction asked for one by one.
    run = models.ForeignKey("Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    # Shadow scoring: the candidate's answer to the same image, never shown to the user (rollout.py).
    shadow_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="+", db_index=False)
    shadow_digit = models.PositiveSmallIntegerField(null=True, blank=True)
    shadow_confidence = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "-id"], condition=models.Q(raw_image__isnull=False),
                                name="prediction_kept_raw_images"),
                   # only the few rows of scored files are indexed: the hot write of drawings pays nothing for it
                   models.Index(fields=["run", "id"], condition=models.Q(run__isnull=False), name="prediction_of_run"),
                   models.Index(fields=["shadow_version", "id"], condition=models.Q(shadow_version__isnull=False),
                                name="prediction_shadowed")]


class Evaluation(models.Model):
    """A version measured on a whole dataset: accuracy, per-class precision/recall/F1, confusion matrix and the most
    confident mistakes (with their images), as the evaluate scenario's run found them."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="evaluations")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="evaluations")
    run = models.ForeignKey("Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    metrics = models.JSONField()
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


class Sample(models.Model):
    """A labelled user image outside bulk snapshots (a correction or a drawn upload)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        REJECTED = "rejected"

    image = models.BinaryField()
    label = models.PositiveSmallIntegerField()
    prediction = models.ForeignKey(
        Prediction, null=True, blank=True, on_delete=models.SET_NULL, related_name="samples"
    )
    user = models.CharField(max_length=150, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    reviewed_by = models.CharField(max_length=150, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


class Report(models.Model):
    """A rendered model report, reused while the data it was made from (its input hash) is unchanged."""

    class Kind(models.TextChoices):
        PDF = "pdf"
        HTML = "html"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="reports")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    input_sha256 = models.CharField(max_length=64)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="reports")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "kind", "input_sha256"], name="one_report_per_input")
        ]


class Webhook(models.Model):
    """An admin's HTTPS endpoint for platform events; each delivery is signed with its secret (HMAC-SHA256)."""

    url = models.URLField(max_length=500)
    events = models.JSONField(help_text="the event types it receives")
    secret = models.CharField(max_length=128)
    active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


class Event(models.Model):
    """The outbox: something that happened, written in the same transaction as the change itself, and delivered to
    every active webhook subscribed to its type. `key` makes an event that must happen once (a day's drift alert)
    happen once."""

    type = models.CharField(max_length=40)
    data = models.JSONField()
    key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


class WebhookDelivery(models.Model):
    """One event to one webhook: attempted until it is answered 2xx, with back-off, or until it fails for good."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="delivery_due")]
