"""The index's database (SQLite or PostgreSQL) and what is kept in it regardless of what it
means: the connection and transactions, the schema and its migrations, the outbox of
messages owed to the team, and retention of old records."""
