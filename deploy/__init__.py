"""Deployment manifests and the generators that keep them equal to the models."""
