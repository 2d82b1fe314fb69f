"""kcm: a CPU manager for Kubernetes nodes."""

__version__ = "0.2.0"
