"""kcm: a CPU manager for Kubernetes nodes."""

__version__ = "0.1.0"
