"""SpeechCraft-style captions from descriptor attributes (kept for existing imports).

The caption vocabulary -- writing captions and parsing them back -- lives in
:mod:`sedtk.data.attributes`; this module re-exports its writer.
"""

from sedtk.data.attributes import AGE_WORDS, RANGE_PHRASE, STYLE_PHRASES, caption, speaker_phrase

__all__ = ["AGE_WORDS", "RANGE_PHRASE", "STYLE_PHRASES", "caption", "speaker_phrase"]
