"""Relational storage through SQLAlchemy's asyncio extension: SQLite (aiosqlite) and MySQL/MariaDB
(asyncmy) share these tables, repositories and unit of work."""
