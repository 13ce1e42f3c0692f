"""The style-swap lab: VGG19 encoder with an explicit input convention, decoders, swap
variants (pure functions), decoder training, swap runs and folder stylisation."""
