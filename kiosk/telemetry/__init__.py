"""Verification metrics to MLflow, batched per kiosk session, spooled while offline (no Qt)."""
