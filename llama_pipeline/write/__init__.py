"""Writing to the warehouse: the IO manager, COPY, merges, locks and the database itself."""
