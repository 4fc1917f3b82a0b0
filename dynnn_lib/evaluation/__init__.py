"""From outputs to numbers: head rules and routing, accuracy matrices, metrics, paired statistics.

From a trained model to numbers: test-set outputs and the matrices under every head rule (``outputs``), which
head answers an image (``routing``), the metrics of an accuracy matrix (``metrics``) and paired statistics over
seeds (``stats``). Imports ``core`` and ``data``; never a method, the engine or a report.
"""
