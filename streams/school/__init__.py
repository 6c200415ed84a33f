"""Schools: attendance and safety reports."""
