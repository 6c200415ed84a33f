"""Traffic: flow counts and incidents from intersections and road segments."""
