"""Simulators: believable, repeatable sensor events for drills, demos and load tests."""
