"""Tables of credit commitments (信用承诺) made for repair, and their breaches."""

from __future__ import annotations
