"""Boot loaders that put a kernel into RAM without firmware (Multiboot)."""
