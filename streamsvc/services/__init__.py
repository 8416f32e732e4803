"""Use cases: load -> decide (domain) -> save (store) -> publish (bus)."""
