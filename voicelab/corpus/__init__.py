"""Corpus tools for the base model: on-disk corpora, .list files and offline TTS voices ->
one multi-speaker training set (see build.py), with the development voices kept out
(exclude.py) and every source's licence on the model card (licences.py, modelcard.py)."""
