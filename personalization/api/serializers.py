"""Serializers of the personalization API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from personalization.models import ClusterLabel, CustomerScore, ModelVersion


class CustomerScoreSerializer(serializers.ModelSerializer[CustomerScore]):
    customer = serializers.IntegerField(source="customer_id", read_only=True)
    customer_external_id = serializers.CharField(source="customer.external_id", read_only=True)

    class Meta:
        model = CustomerScore
        fields = [
            "customer", "customer_external_id", "orders", "historic_value", "days_since_last_order",
            "probability_alive", "expected_orders_90d", "expected_orders_365d", "predicted_value_365d",
            "next_order_date", "churn_risk", "churn_band", "reasons", "r_score", "f_score", "m_score",
            "rfm_segment", "cluster", "model_versions", "scored_at",
        ]  # fmt: skip
        read_only_fields = fields


class RfmSegmentSerializer(serializers.Serializer[dict[str, Any]]):
    segment = serializers.CharField()
    slug = serializers.CharField()
    customers = serializers.IntegerField()
    customer_share = serializers.FloatField()
    revenue = serializers.FloatField()
    revenue_share = serializers.FloatField()


class ClusterSerializer(serializers.ModelSerializer[ClusterLabel]):
    id = serializers.IntegerField(source="cluster_id", read_only=True)
    display_name = serializers.CharField(read_only=True)
    model_version = serializers.IntegerField(source="model_version_id", read_only=True)

    class Meta:
        model = ClusterLabel
        fields = ["id", "name", "display_name", "description", "customers", "model_version", "updated"]
        read_only_fields = ["id", "display_name", "description", "customers", "model_version", "updated"]


class ModelVersionSerializer(serializers.ModelSerializer[ModelVersion]):
    approved_by = serializers.EmailField(source="approved_by.email", read_only=True, default=None)

    class Meta:
        model = ModelVersion
        fields = [
            "id", "kind", "number", "status", "algorithm", "parameters", "features", "training_start",
            "training_end", "n_customers", "metrics", "baseline_name", "baseline_metrics", "checks",
            "passed_checks", "job", "created", "activated_at", "retired_at", "approved_by", "approved_at",
        ]  # fmt: skip
        read_only_fields = fields


class TrainingRunStartSerializer(serializers.Serializer[dict[str, Any]]):
    cutoff = serializers.DateField(
        required=False, help_text="train as of this day (the last day of data used); default: today"
    )
