"""The analytics tables' upkeep (SQL)."""
