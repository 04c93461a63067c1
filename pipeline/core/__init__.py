"""The bottom layer: the config schema, the project's vocabularies, Beam profiles, file I/O and CSV reading.

Everything else in tfx_tabular imports from here; nothing here imports from the rest of the project.
"""
