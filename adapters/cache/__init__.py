"""Caches of serialized post lists: in the process, or in Redis shared by several processes."""
