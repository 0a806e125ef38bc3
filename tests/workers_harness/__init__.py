"""The Workers harness: the real Worker entries in Pyodide on Miniflare's D1 and Queues (see README.md)."""
