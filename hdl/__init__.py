"""spikeforge.hdl."""
