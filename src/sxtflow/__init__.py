"""sxtflow: soft X-ray tomography of whole cells, from projections to statistics."""

__version__ = "0.1.0"
