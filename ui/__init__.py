"""AttnScope's Streamlit glue, shared by ``app.py`` and the page scripts in ``pages/``.

``state`` (keys, the request, per-session stores), ``text`` (language, Markdown-safe text, errors),
``services`` (process-wide caches, the concurrency queue, rate limits), ``derived`` (what pages
compute from the session's result), ``sidebar`` and ``links`` (the input form and shared links),
``analyze`` (the Analyze action), ``widgets`` (selectors, tables, the attention-view component).
Everything that is not about Streamlit lives in ``core`` and ``viz``.

One caching scheme, always by content, never by ``id()``: models and analyses are process-wide
``st.cache_resource`` entries keyed by their arguments (``ui.services``); whatever a session
derives from its result sits in a bounded :class:`ui.state.SessionStore` keyed by the analysis'
``content_key`` and the options that shaped it, and every store is emptied by a new result.
"""
