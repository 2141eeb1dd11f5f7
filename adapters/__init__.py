"""Driven adapters: one module or package per technology, each implementing domain or application ports."""
