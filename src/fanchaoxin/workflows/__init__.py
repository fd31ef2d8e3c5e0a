"""Use cases that span slices (业务流程): each reads, in order, what happens.

Slice services do one slice's work and return what happened; they never call up. A workflow calls
them in order — transition → audit → instructions → feed → correction notice → linked entries — so
that one place says what publishing, ending, disputing, correcting, merging and splitting do.
"""
