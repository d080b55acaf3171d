"""Word statistics over SQLite, zlib, hashlib and json: a pure-Python app
that still needs several of the standard library's native modules."""
