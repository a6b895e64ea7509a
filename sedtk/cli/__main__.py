"""``python -m sedtk.cli`` (also ``torchrun -m sedtk train ...`` for multi-GPU training)."""

from sedtk.cli import main

main()
