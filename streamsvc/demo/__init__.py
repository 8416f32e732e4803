"""Deterministic demo data: a Bắc Kạn-like province, its members and viewing points."""
