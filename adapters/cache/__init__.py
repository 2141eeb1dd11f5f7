"""Caches: serialized post lists (in the process, or in Redis shared by several processes) and the
callers the store confirmed a moment ago."""
