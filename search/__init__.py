"""sr-search: neural-architecture search and reproducibility studies for efficient SR.

Data flows one way through the sub-packages:

    data -> models -> train -> evaluate -> profile -> study (trial results) -> report
"""

__version__ = "0.1.0"
