"""The HTTP API of the operations centre."""
