"""Metrics (PSNR/SSIM), evaluation protocols, the evaluator and ``python -m search.evaluate``."""

from search.evaluate.baselines import MatlabBicubic  # noqa: F401
from search.evaluate.evaluator import (  # noqa: F401
    clear_cache,
    default_protocol_name,
    evaluate_model,
    evaluate_models,
    prepare_samples,
    resolve_protocol,
)
from search.evaluate.metrics import psnr, shave, ssim  # noqa: F401
from search.data.protocols import Protocol, get_protocol, list_protocols, register_protocol  # noqa: F401


def main(argv=None):
    """Entry point of ``sr-evaluate`` / ``python -m search.evaluate``."""
    from search.evaluate.cli import main as cli

    return cli(argv)
