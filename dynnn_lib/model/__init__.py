"""The network: a trunk and its heads (``network``), its offline pretraining (``pretrain``) and ``build``, the one
place that joins the two for a configuration. Imports ``core`` and ``data`` (pretraining generates its images).
"""
