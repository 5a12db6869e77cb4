"""Logging setup shared by every front end: keep third-party libraries quiet."""

from __future__ import annotations

import logging

__all__ = ["quiet_third_party_loggers"]


def quiet_third_party_loggers() -> None:
    """Keep litellm, httpx and MLflow from logging request details (keys included) or noise."""
    import os

    if not os.environ.get("LITELLM_LOG"):  # a user who asks for litellm's logs gets them
        for name in ("LiteLLM", "litellm", "LiteLLM Router", "LiteLLM Proxy"):
            logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
