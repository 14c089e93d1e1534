"""RQ job functions: they take ids, load rows, call portal code, and commit."""
