"""What belongs to a run folder: where a command writes and what it refuses to overwrite
(`folders`), and how an interrupted run is resumed from its checkpoint (`resume`)."""
