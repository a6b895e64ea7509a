"""Syllables of transcripts from the pronunciation dictionaries (English: CMUdict; Mandarin: pypinyin)."""

from __future__ import annotations

from sedtk.data.syllables import count_syllables


def test_english_words_from_the_dictionary_and_unknown_ones_from_hyphenation():
    s = count_syllables("The teacher waited near the station.")
    assert (s.count, s.tokens, s.guessed, s.unknown) == (9, 6, 0, 0) and s.reliable
    assert count_syllables("We moved the green bag on Monday").count == 8
    assert count_syllables("the teacher's dog").count == 4  # a possessive: the word's own syllables
    odd = count_syllables("zorbleflux")
    assert odd.guessed == 1 and odd.count >= 2 and not odd.reliable  # one token, all guessed


def test_mandarin_one_syllable_per_character_and_what_is_not_counted():
    s = count_syllables("语速很快，声音很高。")
    assert (s.count, s.tokens, s.unknown) == (8, 8, 0) and s.reliable
    mixed = count_syllables("我有 2 个 apple")
    assert mixed.count == 3 + 2 and mixed.unknown == 1  # the digit is not counted
    assert not count_syllables("").reliable and not count_syllables("12 34 56").reliable


def test_phones_from_the_dictionary_and_pinyin_initials_and_finals():
    assert count_syllables("teacher dog").phones == 4 + 3  # T IY1 CH ER0 + D AO1 G
    assert count_syllables("我是中国人").phones == 2 + 2 + 2 + 2 + 2  # w+o sh+i zh+ong g+uo r+en
    assert count_syllables("啊").phones == 1  # a final without an initial
    assert count_syllables("zzyzxq").phones == 5  # not in the dictionary: 0.85 per letter
