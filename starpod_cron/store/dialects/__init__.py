"""Database dialects: each a small driver running the store's transaction scripts."""
