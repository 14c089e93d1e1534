"""Files: the content-addressed store and how a file's type is judged by its bytes."""
