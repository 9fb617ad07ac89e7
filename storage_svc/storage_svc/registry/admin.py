from django.contrib import admin

from storage_svc.registry.models import Alias, AliasChange, Blob, Dataset, ModelVersion, Prediction, Report, Run, Sample


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "source", "split", "num_samples", "sha256", "created_by", "created_at"]
    list_filter = ["source", "split"]

    def has_change_permission(self, request, obj=None):
        return False  # datasets are immutable snapshots


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "architecture", "parameter_count", "created_by", "created_at"]
    list_filter = ["architecture"]


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "progress", "created_by", "created_at", "finished_at"]
    list_filter = ["kind", "status"]


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["id", "digit", "model_version", "user", "latency_ms", "corrected_label", "created_at"]
    list_filter = ["digit"]


admin.site.register(Blob)
admin.site.register(Alias)
admin.site.register(AliasChange)
admin.site.register(Sample)
admin.site.register(Report)
