"""Dev tools kept out of the product image and wheel: the embedded emulator, its moto patches, `rotaudit local`."""
