"""sedtk: explainable speech emotion recognition with LLM-empowered fine-grained speech descriptors.

Implements Chen et al., "Towards LLM-Empowered Fine-Grained Speech Descriptors for Explainable
Emotion Recognition", INTERSPEECH 2025.
"""

__version__ = "0.1.0"
