"""Techniques from the parallel-LLM literature, one module per paper (or per family of papers).

Each module's docstring cites its paper, exposes pure functions built on paraplan's one cost model
(``paraplan.train``, ``paraplan.infer``, ``paraplan.sim``, ``paraplan.cost``), and the functions named by the
paper's claims in ``paraplan/catalog/claims/<key>.yaml``. ``paraplan claims`` evaluates them live.
"""
