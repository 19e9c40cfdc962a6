"""``python -m core serve``: AttnScope over HTTP (FastAPI on uvicorn), with the web app's limits,
queue and demo mode. :func:`core.serve.app.create_app` builds the app;
:class:`core.serve.cli.ServerThread` runs one in a thread (tests, notebooks);
:func:`core.serve.cli.main` runs the command. Nothing is imported here, so that ``python -m core``
does not load FastAPI for its other commands."""
