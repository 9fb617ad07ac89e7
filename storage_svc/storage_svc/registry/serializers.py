"""JSON shapes of storage_svc's API: output serializers and input validation."""

from __future__ import annotations

import base64

from rest_framework import serializers

from storage_svc.registry.models import (
    Alias,
    AliasChange,
    Dataset,
    Evaluation,
    ModelVersion,
    Prediction,
    Run,
    Sample,
    Webhook,
    WebhookDelivery,
)


class DatasetSerializer(serializers.ModelSerializer):
    parents = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Dataset
        fields = ["id", "name", "source", "split", "num_samples", "class_counts", "sha256",
                  "parents", "meta", "created_by", "created_at"]


class RunSerializer(serializers.ModelSerializer):
    class Meta:
        model = Run
        fields = ["id", "kind", "params", "status", "progress", "message", "epochs", "result",
                  "error", "created_by", "created_at", "started_at", "finished_at", "heartbeat_at", "parent_run"]


class ModelVersionSerializer(serializers.ModelSerializer):
    version = serializers.CharField(read_only=True)
    weights_sha256 = serializers.CharField(source="weights_id", read_only=True)
    weights_size = serializers.IntegerField(source="weights.size", read_only=True)
    nearest_index_sha256 = serializers.CharField(source="nearest_index_id", read_only=True, allow_null=True)
    datasets = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    aliases = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = ["id", "version", "architecture", "hyperparameters", "datasets", "base_version",
                  "metrics", "weights_sha256", "weights_size", "nearest_index_sha256", "parameter_count", "run", "note",
                  "aliases", "created_by", "created_at"]

    def get_aliases(self, version: ModelVersion) -> list[str]:
        return sorted(alias.name for alias in version.aliases.all())


class EvaluationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Evaluation
        fields = ["id", "model_version", "dataset", "run", "metrics", "created_by", "created_at"]


class AliasSerializer(serializers.ModelSerializer):
    model_version = ModelVersionSerializer(read_only=True)

    class Meta:
        model = Alias
        fields = ["name", "model_version", "traffic_share", "updated_at"]


class AliasChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = AliasChange
        fields = ["id", "alias", "action", "from_version", "to_version", "actor", "reason", "details", "changed_at"]


class PredictionSerializer(serializers.ModelSerializer):
    image = serializers.SerializerMethodField()
    model = serializers.SerializerMethodField()

    class Meta:
        model = Prediction
        fields = ["id", "digit", "probabilities", "confidence", "model", "latency_ms", "user", "created_at",
                  "corrected_label", "run", "image"]

    def get_image(self, prediction: Prediction) -> str:
        return base64.b64encode(bytes(prediction.image)).decode()

    def get_model(self, prediction: Prediction) -> dict:
        return {"id": prediction.model_version_id, "version": f"v{prediction.model_version_id}"}


class SampleSerializer(serializers.ModelSerializer):
    image = serializers.SerializerMethodField()
    confidence = serializers.SerializerMethodField()

    class Meta:
        model = Sample
        fields = ["id", "label", "user", "status", "prediction", "confidence", "reviewed_by", "reviewed_at",
                  "created_at", "image"]

    def get_image(self, sample: Sample) -> str:
        return base64.b64encode(bytes(sample.image)).decode()

    def get_confidence(self, sample: Sample) -> float | None:
        """How sure the model was of the prediction this sample corrects (None for a drawn sample)."""
        if hasattr(sample, "confidence"):  # annotated by the list
            return sample.confidence
        return sample.prediction.confidence if sample.prediction_id else None


# Input shapes.

class RunCreateInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Run.Kind.choices)
    params = serializers.DictField(required=False, default=dict)
    created_by = serializers.CharField(max_length=150)
    parent_run = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)


class RunUpdateInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=Run.Status.choices, required=False)
    progress = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    message = serializers.CharField(required=False, allow_blank=True, max_length=300)
    epochs = serializers.ListField(child=serializers.DictField(), required=False)
    result = serializers.DictField(required=False)
    error = serializers.CharField(required=False, allow_blank=True, max_length=10000)
    heartbeat = serializers.BooleanField(required=False)


class ModelVersionCreateInput(serializers.Serializer):
    architecture = serializers.CharField(max_length=50)
    hyperparameters = serializers.DictField(required=False, default=dict)
    dataset_ids = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    weights_sha256 = serializers.RegexField(r"^[0-9a-f]{64}$")
    nearest_index_sha256 = serializers.RegexField(r"^[0-9a-f]{64}$", required=False, allow_null=True, default=None)
    metrics = serializers.DictField(required=False, default=dict)
    parameter_count = serializers.IntegerField(min_value=0, required=False, default=0)
    created_by = serializers.CharField(max_length=150)
    base_version_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    run_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class EvaluationCreateInput(serializers.Serializer):
    dataset_id = serializers.IntegerField(min_value=1)
    run_id = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    metrics = serializers.DictField()
    created_by = serializers.CharField(max_length=150)


class AliasSetInput(serializers.Serializer):
    model_version_id = serializers.IntegerField()
    actor = serializers.CharField(max_length=150)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    action = serializers.ChoiceField(choices=["move", "override"], required=False, default="move")
    details = serializers.DictField(required=False, default=dict)


class CanaryInput(serializers.Serializer):
    share = serializers.FloatField(min_value=0.0, max_value=0.5)
    actor = serializers.CharField(max_length=150)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class SampleCreateInput(serializers.Serializer):
    image_b64 = serializers.CharField()
    label = serializers.IntegerField(min_value=0, max_value=9)
    user = serializers.CharField(max_length=150)
    prediction_id = serializers.IntegerField(required=False, allow_null=True, default=None)


class SampleBulkItem(serializers.Serializer):
    image_b64 = serializers.CharField(max_length=2000)
    label = serializers.IntegerField(min_value=0, max_value=9)
    user = serializers.CharField(max_length=150)


class SamplesBulkInput(serializers.Serializer):
    samples = serializers.ListField(child=SampleBulkItem(), min_length=1, max_length=100)


class SampleReviewInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=["accepted", "rejected"])
    reviewer = serializers.CharField(max_length=150)


class FeedbackInput(serializers.Serializer):
    label = serializers.IntegerField(min_value=0, max_value=9)
    user = serializers.CharField(max_length=150)


class WebhookSerializer(serializers.ModelSerializer):
    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "active", "created_by", "created_at"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event = serializers.SerializerMethodField()
    url = serializers.CharField(source="webhook.url")

    class Meta:
        model = WebhookDelivery
        fields = ["id", "webhook", "url", "event", "status", "attempts", "last_status_code", "last_error",
                  "next_attempt_at", "delivered_at", "created_at"]

    def get_event(self, delivery) -> dict:
        return {"id": delivery.event_id, "type": delivery.event.type}


class WebhookInput(serializers.Serializer):
    url = serializers.CharField(max_length=500)
    events = serializers.ListField(child=serializers.CharField(max_length=40), max_length=20)
    created_by = serializers.CharField(max_length=150)


class ClaimInput(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=16)
    lease_s = serializers.FloatField(min_value=1.0, max_value=600.0, default=30.0)


class DeliveryResultInput(serializers.Serializer):
    attempt = serializers.IntegerField(min_value=1, max_value=1000)
    status_code = serializers.IntegerField(min_value=100, max_value=599, allow_null=True)
    error = serializers.CharField(allow_blank=True, max_length=2000, default="")


class EventInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=["gate.refused"])
    data = serializers.DictField()
