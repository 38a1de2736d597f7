"""Config -> Run, and changes to a Run: the experiment, views, the birth map, launches from any θ0, what-if. With the store, the only writer of files."""
