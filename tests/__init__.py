"""AttnScope tests: unit, integration, app (AppTest) and browser (Playwright) suites."""
