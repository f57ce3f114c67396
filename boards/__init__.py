"""spikeforge.boards."""
