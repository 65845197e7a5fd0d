"""The chat example plus consumers and views that only tests need (echo, slow, failing)."""
