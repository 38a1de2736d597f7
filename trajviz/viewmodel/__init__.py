"""What to draw, as plain numpy: selection, honesty, axes, ticks, summaries, diagnosis, labels, colours. No plotly, no torch."""
