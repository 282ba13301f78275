"""A local Zendesk Chat REST API simulator for tests, benchmarks and demos."""

from .dataset import Dataset
from .server import Fault, Simulator

__all__ = ["Dataset", "Fault", "Simulator"]
