"""Database access: connection pools and ordered SQL migrations per namespace schema."""
