"""Policy: settings, limits, links, languages, examples, errors and input parsing: what the app
and CLI allow and how they say it."""
