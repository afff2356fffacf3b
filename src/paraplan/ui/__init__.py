"""The local web page (``paraplan ui``) and static reports (``paraplan report``); needs the ``ui`` extra.

* :mod:`paraplan.ui.app`: the FastAPI app (pages, Plotly.js from the ``plotly`` wheel, the JSON API);
* :mod:`paraplan.ui.service`: request models and the calls behind the API (the CLI's own functions);
* :mod:`paraplan.ui.views` / :mod:`paraplan.ui.charts`: summary, tables and Plotly figures of any ``--json`` result;
* :mod:`paraplan.ui.report` / :mod:`paraplan.ui.png`: one self-contained HTML file, or a PNG (matplotlib).
"""
