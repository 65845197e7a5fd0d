"""Generators of the reference pages in docs/reference/ (run from the repository root:
``python -m tools.docs.crd_reference``, ``python -m tools.docs.helm_values_reference``)."""
