"""Stream processing: validate raw events, keep entity state, aggregate event-time minutes."""
