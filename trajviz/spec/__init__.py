"""What a run is asked to be: names, bounds, the config (the one validation layer), the budget and learner variants. No torch."""
