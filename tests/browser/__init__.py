"""Browser tests: the app in Debian Chromium, driven by Playwright."""
