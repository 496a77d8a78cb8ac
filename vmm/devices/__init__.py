"""PC devices, one module per chip, named as its datasheet names it."""
