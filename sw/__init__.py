"""Software side: data, integer reference, trainer, host tools."""
