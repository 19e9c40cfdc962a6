"""AttnScope's Streamlit glue, shared by ``app.py`` and the page scripts in ``pages/``.

``state`` (keys, the request, per-session stores), ``text`` (language, Markdown-safe text, errors),
``services`` (process-wide caches, the concurrency queue, rate limits), ``derived`` (what pages
compute from the session's result), ``sidebar`` and ``links`` (the input form and shared links),
``analyze`` (the Analyze action), ``widgets`` (selectors, tables, the attention-view component).
Everything that is not about Streamlit lives in ``core`` and ``viz``.
"""
