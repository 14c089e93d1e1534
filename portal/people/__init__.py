"""People: staff accounts (sign-in, roles) and the client directory (clients, contacts,
projects)."""
