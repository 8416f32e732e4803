"""Browser tests. A package so that its conftest.py is `browser.conftest`, not a second
top-level `conftest` that would shadow tests/conftest.py for `from conftest import ...`."""
